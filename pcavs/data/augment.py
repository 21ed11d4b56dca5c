"""Augmentations that define PC-AVS's non-identity space (paper Sec. 2.1, Fig. 2).

The target frames fed to the non-identity encoder are augmented so that the
encoder cannot rely on texture or facial structure (identity cues) and must
keep only pose and mouth motion:

* colour transfer: a random permutation of the RGB channels per sample;
* perspective transformation: the frame rectangle is warped onto an isosceles
  trapezoid (top or bottom edge shortened by a random ratio);
* centred random crop (random scale) resized back to the input size, against
  face-detector scale jitter;
* optionally Gaussian blur or unsharp-mask sharpening (as in the released code).

Everything works on batched torch tensors ``(B, 3, H, W)`` in ``[-1, 1]`` and
is deterministic given a ``torch.Generator``: parameters are drawn in a fixed
order and amount whatever the configuration, so the random stream does not
depend on which augmentations are enabled. Perspective and crop are composed
into a single homography so each frame is resampled only once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

PaddingMode = Literal["border", "zeros", "reflection"]

# Number of uniform draws per sample in sample_augment_params (fixed, see module doc).
_NUM_UNIFORMS = 10


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of the non-identity augmentations.

    ``perspective_max``: the shortened parallel side of the trapezoid has
    width ``(1 - s) * W`` with ``s ~ U(0, perspective_max)``; top or bottom is
    chosen with equal probability. ``crop_scale``: the centred crop has side
    ``c * size`` with ``c ~ U(*crop_scale)``. ``blur_sigma`` is in pixels.
    Blur and sharpen are exclusive (sharpen is only tried when blur was not
    drawn). ``padding_mode`` fills what the warp brings in from outside the
    frame (``"border"`` replicates edges, as the released code's
    ``BORDER_REPLICATE``).
    """

    p_color: float = 1.0
    p_perspective: float = 1.0
    perspective_max: float = 0.2
    p_crop: float = 1.0
    crop_scale: tuple[float, float] = (0.8, 1.0)
    p_blur: float = 0.0
    blur_sigma: tuple[float, float] = (0.5, 1.5)
    p_sharpen: float = 0.0
    sharpen_amount: tuple[float, float] = (0.5, 1.5)
    sharpen_sigma: float = 1.0
    padding_mode: PaddingMode = "border"

    def __post_init__(self) -> None:
        for name in ("p_color", "p_perspective", "p_crop", "p_blur", "p_sharpen"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        if not 0.0 <= self.perspective_max < 1.0:
            raise ValueError(f"perspective_max must be in [0, 1), got {self.perspective_max}")
        lo, hi = self.crop_scale
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"crop_scale must satisfy 0 < lo <= hi <= 1, got {self.crop_scale}")
        if not 0.0 <= self.blur_sigma[0] <= self.blur_sigma[1]:
            raise ValueError(f"blur_sigma must satisfy 0 <= lo <= hi, got {self.blur_sigma}")
        if not 0.0 <= self.sharpen_amount[0] <= self.sharpen_amount[1]:
            raise ValueError(f"sharpen_amount must satisfy 0 <= lo <= hi, got {self.sharpen_amount}")
        if self.sharpen_sigma <= 0:
            raise ValueError(f"sharpen_sigma must be > 0, got {self.sharpen_sigma}")
        if self.padding_mode not in ("border", "zeros", "reflection"):
            raise ValueError(f"unknown padding_mode {self.padding_mode!r}")

    @classmethod
    def off(cls) -> AugmentConfig:
        """A configuration under which :func:`augment_nonidentity` is the identity."""
        return cls(
            p_color=0.0,
            p_perspective=0.0,
            perspective_max=0.0,
            p_crop=0.0,
            crop_scale=(1.0, 1.0),
            p_blur=0.0,
            p_sharpen=0.0,
        )


@dataclass(frozen=True)
class AugmentParams:
    """Per-sample augmentation parameters, all of leading size ``B`` (CPU or generator device)."""

    perm: Tensor  # (B, 3) long: output channel c takes input channel perm[b, c]
    shrink: Tensor  # (B,) relative shortening of the trapezoid's short side; 0 = no warp
    shrink_top: Tensor  # (B,) bool: True = top edge shortened, False = bottom edge
    crop: Tensor  # (B,) centred crop scale in (0, 1]; 1 = no crop
    blur_sigma: Tensor  # (B,) Gaussian sigma in pixels; 0 = no blur
    sharpen: Tensor  # (B,) unsharp-mask amount; 0 = no sharpening


def sample_augment_params(batch: int, generator: torch.Generator, cfg: AugmentConfig) -> AugmentParams:
    """Draw the parameters for ``batch`` samples from ``generator`` (fixed consumption)."""
    dev = generator.device
    u = torch.rand(batch, _NUM_UNIFORMS, generator=generator, device=dev, dtype=torch.float64)
    perm_keys = torch.rand(batch, 3, generator=generator, device=dev)

    # argsort of i.i.d. uniforms is a uniformly random permutation.
    perm = torch.argsort(perm_keys, dim=1)
    identity = torch.arange(3, device=dev).expand(batch, 3)
    perm = torch.where((u[:, 0] < cfg.p_color)[:, None], perm, identity)

    shrink = torch.where(u[:, 1] < cfg.p_perspective, u[:, 2] * cfg.perspective_max, 0.0)
    shrink_top = u[:, 3] < 0.5

    lo, hi = cfg.crop_scale
    crop = torch.where(u[:, 4] < cfg.p_crop, lo + (hi - lo) * u[:, 5], 1.0)

    do_blur = u[:, 6] < cfg.p_blur
    s_lo, s_hi = cfg.blur_sigma
    blur_sigma = torch.where(do_blur, s_lo + (s_hi - s_lo) * u[:, 7], 0.0)
    a_lo, a_hi = cfg.sharpen_amount
    sharpen = torch.where(~do_blur & (u[:, 8] < cfg.p_sharpen), a_lo + (a_hi - a_lo) * u[:, 9], 0.0)
    return AugmentParams(perm, shrink, shrink_top, crop, blur_sigma, sharpen)


# --------------------------------------------------------------------------- geometry


def solve_homography(src: Tensor, dst: Tensor) -> Tensor:
    """Homographies ``(B, 3, 3)`` mapping ``src[b, k]`` to ``dst[b, k]`` for 4 point pairs ``(B, 4, 2)``.

    Solves the standard 8x8 DLT system with ``h33 = 1`` via ``torch.linalg.solve``.
    """
    if src.shape != dst.shape or src.shape[-2:] != (4, 2):
        raise ValueError(f"expected (B, 4, 2) point sets, got {tuple(src.shape)} and {tuple(dst.shape)}")
    x, y = src[..., 0], src[..., 1]
    u, v = dst[..., 0], dst[..., 1]
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    # For each pair: [x y 1 0 0 0 -ux -uy] h = u ;  [0 0 0 x y 1 -vx -vy] h = v
    rows_u = torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y], dim=-1)
    rows_v = torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y], dim=-1)
    a = torch.cat([rows_u, rows_v], dim=-2)  # (B, 8, 8)
    b = torch.cat([u, v], dim=-1)  # (B, 8)
    h = torch.linalg.solve(a, b)
    h = torch.cat([h, torch.ones_like(h[..., :1])], dim=-1)
    return h.reshape(*h.shape[:-1], 3, 3)


def trapezoid_corners(shrink: Tensor, shrink_top: Tensor) -> Tensor:
    """Corners ``(B, 4, 2)`` (TL, TR, BR, BL; normalised ``[-1, 1]`` x/y) of the isosceles trapezoid."""
    s = shrink.to(torch.float64)
    top = torch.where(shrink_top, 1.0 - s, torch.ones_like(s))
    bottom = torch.where(shrink_top, torch.ones_like(s), 1.0 - s)
    return torch.stack(
        [
            torch.stack([-top, -torch.ones_like(s)], dim=-1),
            torch.stack([top, -torch.ones_like(s)], dim=-1),
            torch.stack([bottom, torch.ones_like(s)], dim=-1),
            torch.stack([-bottom, torch.ones_like(s)], dim=-1),
        ],
        dim=1,
    )


def _frame_corners(batch: int, device: torch.device) -> Tensor:
    c = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], dtype=torch.float64, device=device)
    return c.expand(batch, 4, 2)


def trapezoid_inverse_homography(shrink: Tensor, shrink_top: Tensor) -> Tensor:
    """Homography ``(B, 3, 3)`` taking output (trapezoid) coordinates back to input coordinates.

    The forward warp sends the frame rectangle onto the trapezoid; sampling
    needs the inverse, which is solved directly from the swapped point pairs.
    """
    corners = _frame_corners(shrink.shape[0], shrink.device)
    return solve_homography(trapezoid_corners(shrink, shrink_top), corners)


def _sampling_grid(h_inv: Tensor, crop: Tensor, height: int, width: int) -> Tensor:
    """``grid_sample`` grid ``(B, H, W, 2)``: output pixel -> crop zoom -> inverse trapezoid."""
    dev = h_inv.device
    # Pixel centres in normalised coordinates (align_corners=False convention).
    ys = (torch.arange(height, dtype=torch.float64, device=dev) * 2 + 1) / height - 1
    xs = (torch.arange(width, dtype=torch.float64, device=dev) * 2 + 1) / width - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    # The centred crop of relative size c, resized to full size, shows [-c, c]^2
    # of the warped frame: output point p corresponds to warped point c * p.
    c = crop.to(torch.float64)[:, None, None]
    px, py = gx[None] * c, gy[None] * c
    hm = h_inv[:, None, None]  # (B, 1, 1, 3, 3)
    den = hm[..., 2, 0] * px + hm[..., 2, 1] * py + hm[..., 2, 2]
    sx = (hm[..., 0, 0] * px + hm[..., 0, 1] * py + hm[..., 0, 2]) / den
    sy = (hm[..., 1, 0] * px + hm[..., 1, 1] * py + hm[..., 1, 2]) / den
    return torch.stack([sx, sy], dim=-1)


def warp_trapezoid_crop(
    frames: Tensor, shrink: Tensor, shrink_top: Tensor, crop: Tensor, padding_mode: PaddingMode = "border"
) -> Tensor:
    """Perspective-warp ``frames`` onto the trapezoids, then centre-crop by ``crop`` and resize back."""
    b, _, h, w = frames.shape
    h_inv = trapezoid_inverse_homography(shrink.to(frames.device), shrink_top.to(frames.device))
    grid = _sampling_grid(h_inv, crop.to(frames.device), h, w).to(frames.dtype)
    return F.grid_sample(frames, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


# --------------------------------------------------------------------------- filtering


def gaussian_blur(frames: Tensor, sigma: Tensor) -> Tensor:
    """Separable Gaussian blur with a per-sample ``sigma`` (pixels), reflect padding."""
    b, c, h, w = frames.shape
    radius = max(1, math.ceil(3.0 * float(sigma.max())))
    radius = min(radius, h - 1, w - 1)  # reflect padding needs pad < size
    x = torch.arange(-radius, radius + 1, dtype=torch.float64, device=frames.device)
    s = sigma.to(torch.float64).to(frames.device).clamp_min(1e-6)[:, None]
    k = torch.exp(-0.5 * (x[None] / s) ** 2)
    k = (k / k.sum(dim=1, keepdim=True)).to(frames.dtype)  # (B, K)
    k = k.repeat_interleave(c, dim=0)  # one kernel per (sample, channel) group
    y = frames.reshape(1, b * c, h, w)
    y = F.pad(y, (radius, radius, 0, 0), mode="reflect")
    y = F.conv2d(y, k[:, None, None, :], groups=b * c)
    y = F.pad(y, (0, 0, radius, radius), mode="reflect")
    y = F.conv2d(y, k[:, None, :, None], groups=b * c)
    return y.reshape(b, c, h, w)


# --------------------------------------------------------------------------- composition


def apply_augment(frames: Tensor, params: AugmentParams, cfg: AugmentConfig) -> Tensor:
    """Apply pre-drawn ``params``: colour permutation, trapezoid warp + crop, blur / sharpen."""
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must be (B, 3, H, W), got {tuple(frames.shape)}")
    b, _, h, w = frames.shape
    dev = frames.device

    perm = params.perm.to(dev)
    out = frames.gather(1, perm[:, :, None, None].expand(b, 3, h, w))

    # Warp only the samples that need it: the rest stay bit-exact.
    geo = ((params.shrink > 0) | (params.crop < 1)).to(dev)
    if bool(geo.any()):
        idx = geo.nonzero().squeeze(1)
        warped = warp_trapezoid_crop(
            out[idx], params.shrink.to(dev)[idx], params.shrink_top.to(dev)[idx], params.crop.to(dev)[idx],
            cfg.padding_mode,
        )  # fmt: skip
        out = out.index_copy(0, idx, warped)

    blur = (params.blur_sigma > 0).to(dev)
    if bool(blur.any()):
        idx = blur.nonzero().squeeze(1)
        out = out.index_copy(0, idx, gaussian_blur(out[idx], params.blur_sigma.to(dev)[idx]))

    sharp = (params.sharpen > 0).to(dev)
    if bool(sharp.any()):
        idx = sharp.nonzero().squeeze(1)
        x = out[idx]
        sigma = torch.full((idx.shape[0],), cfg.sharpen_sigma, device=dev)
        amount = params.sharpen.to(dev)[idx].to(out.dtype)[:, None, None, None]
        # Unsharp mask: add back the high frequencies; clamp to stay in [-1, 1].
        x = (x + amount * (x - gaussian_blur(x, sigma))).clamp(-1.0, 1.0)
        out = out.index_copy(0, idx, x)
    return out


def augment_nonidentity(
    frames: Tensor, generator: torch.Generator, cfg: AugmentConfig | None = None
) -> Tensor:
    """Augment target frames ``(B, 3, H, W)`` in ``[-1, 1]`` for the non-identity encoder.

    Deterministic given ``generator`` (which may live on any device; parameters
    are drawn there and moved to ``frames.device``). Returns a new tensor of
    the same shape and dtype.
    """
    cfg = cfg if cfg is not None else AugmentConfig()
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must be (B, 3, H, W), got {tuple(frames.shape)}")
    params = sample_augment_params(frames.shape[0], generator, cfg)
    return apply_augment(frames, params, cfg)
