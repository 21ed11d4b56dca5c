"""Landmark heatmap loss: the face-alignment task the non-identity encoder (a FAN) starts from.

The released model's E_n is initialised from a FAN trained for 68-point face alignment, so its
68-channel heatmap bottleneck already encodes where the face and its parts are; we cannot
download those weights, so the ``landmarks`` stage trains the same task on the dataset's own
landmarks (exact ones on SynthTalk).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def landmark_heatmaps(points: Tensor, image_size: int, heat_size: int, sigma: float = 1.0) -> Tensor:
    """Gaussian heatmaps ``(N, P, h, h)`` for ``points`` ``(N, P, 2)`` in image pixels (x, y).

    Pixel centres map between the two grids, so a point at the image centre peaks at the heatmap
    centre; ``sigma`` is in heatmap pixels (FAN's targets use 1 at 64x64).
    """
    if points.ndim != 3 or points.shape[-1] != 2:
        raise ValueError(f"points must be (N, P, 2), got {tuple(points.shape)}")
    scale = heat_size / image_size
    centres = (points + 0.5) * scale - 0.5  # (N, P, 2) in heatmap pixels
    grid = torch.arange(heat_size, dtype=points.dtype, device=points.device)
    gx = torch.exp(-((grid - centres[..., 0:1]) ** 2) / (2 * sigma**2))  # (N, P, h)
    gy = torch.exp(-((grid - centres[..., 1:2]) ** 2) / (2 * sigma**2))
    return gy[..., :, None] * gx[..., None, :]


def landmark_loss(pred: Tensor, points: Tensor, image_size: int, sigma: float = 1.0) -> Tensor:
    """Mean squared error between predicted heatmaps ``(N, P, h, h)`` and Gaussians at ``points``.

    Scaled by the number of heatmap pixels per point, so the value does not shrink with the grid.
    """
    target = landmark_heatmaps(points, image_size, pred.shape[-1], sigma).to(pred.dtype)
    if target.shape != pred.shape:
        raise ValueError(f"heatmaps {tuple(pred.shape)} vs {tuple(target.shape)} for the given points")
    return F.mse_loss(pred, target, reduction="sum") / (pred.shape[0] * pred.shape[1])


@torch.no_grad()
def heatmap_points(heatmaps: Tensor, image_size: int) -> Tensor:
    """Arg-max of each heatmap, back in image pixels ``(N, P, 2)``: for logs and tests."""
    n, p, h, w = heatmaps.shape
    idx = heatmaps.flatten(2).argmax(-1)
    xy = torch.stack([idx % w, idx // w], -1).to(heatmaps.dtype)
    return (xy + 0.5) * (image_size / h) - 0.5


def soft_points(heatmaps: Tensor, image_size: int, floor: float = 0.1) -> Tensor:
    """Centroid of each heatmap ``(N, P, h, h)`` above ``floor`` x its peak, in image pixels ``(N, P, 2)``:
    sub-cell positions, which the arg-max (a 4-pixel grid at 64 px) cannot give, and differentiable
    (``loss.output_geometry`` reads the generated frame's geometry through it). The floor keeps the
    far-off noise from pulling points to the centre (the small FAN's error on SynthTalk crops: 1.20 px,
    against 2.13 for the arg-max and 3.46 for the centroid of all positive values)."""
    n, p, h, w = heatmaps.shape
    flat = heatmaps.flatten(2)
    weights = (flat - floor * flat.amax(-1, keepdim=True)).clamp(min=0)
    weights = (weights / weights.sum(-1, keepdim=True).clamp(min=1e-12)).view(n, p, h, w)
    grid = torch.arange(h, dtype=heatmaps.dtype, device=heatmaps.device)
    xy = torch.stack([(weights.sum(2) * grid).sum(-1), (weights.sum(3) * grid).sum(-1)], -1)
    return (xy + 0.5) * (image_size / h) - 0.5


def heatmap_match_loss(fake: Tensor, real: Tensor) -> Tensor:
    """Squared difference of two sets of heatmaps ``(N, P, h, h)``, with :func:`landmark_loss`'s scaling.

    A face-alignment network's heatmaps as a perceptual space: matching the generated frame's to the
    real frame's asks for the same face geometry (head pose, lip shape), which pixel L1 at 64 px
    barely rewards. Zero when the two frames look the same to the network; ``real`` is not detached here.
    """
    if fake.shape != real.shape or fake.ndim != 4:
        shapes = f"{tuple(fake.shape)}, {tuple(real.shape)}"
        raise ValueError(f"heatmaps must be two equal (N, P, h, w) tensors, got {shapes}")
    return F.mse_loss(fake, real, reduction="sum") / (fake.shape[0] * fake.shape[1])
