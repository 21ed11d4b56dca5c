"""Mouth-region reconstruction: L1 restricted to a box around the target's lip landmarks.

Whole-frame L1 at 64 px barely notices the mouth (a few hundred pixels of a 4096-pixel face), so a
generator trained on it alone learns to ignore the speech code and draw an average mouth. This term
gives the mouth its own weight, as lip-sync models that train on faces usually do.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pcavs.eval.landmarks import MOUTH


def mouth_mask(landmarks: Tensor, size: int, pad: float = 0.25) -> Tensor:
    """(N, 1, size, size) masks, 1 inside each lip box grown by ``pad`` x its width on every side.

    ``landmarks`` (N, 68, 2) are in crop pixels (x, y) with pixel centres at integers.
    """
    if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be (N, 68, 2), got {tuple(landmarks.shape)}")
    lips = landmarks[:, MOUTH]
    lo, hi = lips.amin(1), lips.amax(1)  # (N, 2)
    margin = pad * (hi[:, :1] - lo[:, :1])  # the same margin on both axes, from the mouth width
    lo, hi = lo - margin, hi + margin
    grid = torch.arange(size, dtype=landmarks.dtype, device=landmarks.device)
    inside_x = (grid >= lo[:, :1]) & (grid <= hi[:, :1])  # (N, size)
    inside_y = (grid >= lo[:, 1:]) & (grid <= hi[:, 1:])
    return (inside_y[:, :, None] & inside_x[:, None, :]).unsqueeze(1).to(landmarks.dtype)


def masked_l1(fake: Tensor, real: Tensor, mask: Tensor) -> Tensor:
    """Mean absolute error over the masked pixels (all channels); 0 where every mask is empty."""
    if mask.shape[0] != fake.shape[0] or mask.shape[-2:] != fake.shape[-2:]:
        raise ValueError(f"mask {tuple(mask.shape)} does not fit images {tuple(fake.shape)}")
    area = mask.sum() * fake.shape[1]
    return ((fake - real).abs() * mask).sum() / torch.clamp(area, min=1.0)
