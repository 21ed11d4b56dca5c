"""Structural similarity as a loss (1 - SSIM), differentiable, for images in [-1, 1].

L1 treats every pixel error alike, so a generator that cannot place an edge exactly blurs it; SSIM
compares local means, contrasts and correlations, and rewards a present edge over a washed-out one.
Same window as :mod:`pcavs.eval.ssim` (Gaussian 11 taps, sigma 1.5, K1 0.01, K2 0.03, mean over the
pixels whose window lies inside the image), so the loss is one minus the benchmark's SSIM.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

_SIGMA, _RADIUS = 1.5, 5
_K1, _K2 = 0.01, 0.03


def _window(dtype: torch.dtype, device: torch.device) -> Tensor:
    x = torch.arange(-_RADIUS, _RADIUS + 1, dtype=dtype, device=device)
    g = torch.exp(-(x**2) / (2 * _SIGMA**2))
    return g / g.sum()


def ssim_map(a: Tensor, b: Tensor, data_range: float = 1.0) -> Tensor:
    """Per-pixel, per-channel SSIM ``(N, C, H-10, W-10)`` of ``(N, C, H, W)`` images in ``[0, data_range]``.

    Only the pixels whose window lies inside the image. The luminance factor is not shift invariant,
    so the images must be on the scale the metric is defined on (0 is black), not centred.
    """
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"expected two equal (N, C, H, W) batches, got {tuple(a.shape)}, {tuple(b.shape)}")
    if min(a.shape[-2:]) <= 2 * _RADIUS:
        raise ValueError(f"images must be larger than {2 * _RADIUS + 1} pixels, got {tuple(a.shape[-2:])}")
    c = a.shape[1]
    g = _window(a.dtype, a.device)
    gx, gy = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(x: Tensor) -> Tensor:  # separable Gaussian, no padding
        return F.conv2d(F.conv2d(x, gx, groups=c), gy, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def ssim_loss(fake: Tensor, real: Tensor) -> Tensor:
    """``1 - mean SSIM`` of images in [-1, 1] (computed in fp32 under autocast)."""
    return 1.0 - ssim_map((fake.float() + 1) / 2, (real.float() + 1) / 2).mean()
