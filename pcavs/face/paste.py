"""Paste a generated face crop back into the full-resolution frame.

Every output pixel near the face is mapped *forward* through the alignment matrix into the crop,
sampled bilinearly and blended with a soft mask evaluated analytically at that crop position (so the
feather is smooth at any output resolution and no large blurred mask image is built).  Pixels whose
crop position falls outside the mask are copied unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image
from scipy.special import ndtr

from .align import compose, invert_affine, sample_bilinear, transform_points
from .detect import as_rgb_uint8

__all__ = ["H264_MAX_MACROBLOCKS", "PASTE_BACK_MAX_SIZE", "face_mask", "fit_paste_back", "paste_back"]

# H.264's largest level (6.2) allows 139264 16x16 macroblocks per frame (e.g. 8192x4352) and a side of
# at most sqrt(8 * 139264) = 1055 macroblocks; larger frames make streams players refuse.
H264_MAX_MACROBLOCKS = 139264
H264_MAX_SIDE_MB = 1055
# Longer side of a pasted-back video unless asked otherwise: a 6000x6000 photo would be encoded at
# 0.5 frames/s into 2.9 GB, beyond any H.264 level.
PASTE_BACK_MAX_SIZE = 1920

# Ellipse in network-input units (fraction of ``size``): it covers brows to chin and cheek to cheek
# given the official template (eyes near y=0.31, mouth near y=0.63).
_ELLIPSE_CENTER = (0.5, 0.54)
_ELLIPSE_AXES = (0.42, 0.47)
_RECT_INSET = 0.03


def _mask_at(qx: np.ndarray, qy: np.ndarray, size: int, shape: str, feather: float) -> np.ndarray:
    """Soft mask at crop coordinates (float32 in [0, 1])."""
    u, v = (qx + 0.5) / size, (qy + 0.5) / size  # pixel centres -> [0, 1] units
    if shape == "ellipse":
        ax, ay = _ELLIPSE_AXES
        r = np.hypot((u - _ELLIPSE_CENTER[0]) / ax, (v - _ELLIPSE_CENTER[1]) / ay)
        inside = (1.0 - r) * min(ax, ay)  # approximate signed distance to the ellipse, >0 inside
    elif shape == "rect":
        inside = np.minimum(np.minimum(u, 1 - u), np.minimum(v, 1 - v)) - _RECT_INSET
    else:
        raise ValueError(f"mask must be 'ellipse' or 'rect', got {shape!r}")
    if feather <= 0:
        return (inside > 0).astype(np.float32)
    # Gaussian-feathered edge: the Gaussian CDF of the distance, shifted two sigmas inwards so the
    # mask is ~0 (2 %) on the shape's outline and ~1 four sigmas inside it.
    return ndtr(inside / feather - 2.0).astype(np.float32)


def face_mask(size: int = 224, *, shape: str = "ellipse", feather: float = 0.04) -> np.ndarray:
    """The blend mask in network-input space, (size, size) float32 (for inspection/debugging)."""
    g = np.arange(size, dtype=np.float64)
    qx, qy = np.meshgrid(g, g)
    return _mask_at(qx, qy, size, shape, feather)


def paste_back(original_img: Any, generated: Any, matrix: np.ndarray, *, feather: float = 0.04,
               mask: str = "ellipse") -> np.ndarray:
    """Blend ``generated`` (the size x size network output) into ``original_img`` at its face.

    Args:
        original_img: HxWx3 uint8 frame the crop was taken from.
        generated: size x size x 3 uint8 (or float in 0-255) crop in network-input space.
        matrix: composite 2x3 matrix original -> network input (as returned by ``align_face``).
        feather: Gaussian edge width as a fraction of the crop size (0 = hard edge).
        mask: "ellipse" (face only) or "rect" (whole crop, edges feathered).
    Returns:
        A new HxWx3 uint8 image; pixels outside the mask are bit-identical to the input.
    """
    orig = as_rgb_uint8(original_img)
    gen = np.asarray(generated)
    size = gen.shape[0]
    if gen.ndim != 3 or gen.shape[1] != size or gen.shape[2] != 3:
        raise ValueError(f"generated must be size x size x 3, got {gen.shape}")
    m = np.asarray(matrix, dtype=np.float64)
    h, w = orig.shape[:2]
    corners = transform_points(invert_affine(m), np.array([[-1, -1], [size, -1], [-1, size], [size, size]]))
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 1, [w, h])
    out = orig.copy()
    if x1 <= x0 or y1 <= y0:
        return out  # the crop lies entirely outside the image
    px, py = np.meshgrid(np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64))
    qx = m[0, 0] * px + m[0, 1] * py + m[0, 2]
    qy = m[1, 0] * px + m[1, 1] * py + m[1, 2]
    alpha = _mask_at(qx, qy, size, mask, feather)[..., None]
    face = sample_bilinear(gen, qx, qy, "replicate")
    region = orig[y0:y1, x0:x1].astype(np.float32)
    blended = region + alpha * (face - region)
    # Where alpha is exactly 0 keep the original bytes (rounding must not touch them).
    out[y0:y1, x0:x1] = np.where(alpha > 0, np.clip(np.rint(blended), 0, 255), region).astype(np.uint8)
    return out


def _h264_problem(w: int, h: int) -> str | None:
    mbw, mbh = -(-w // 16), -(-h // 16)
    if mbw * mbh > H264_MAX_MACROBLOCKS or max(mbw, mbh) > H264_MAX_SIDE_MB:
        return (f"{w}x{h} is beyond H.264's largest level (6.2: at most {H264_MAX_MACROBLOCKS} macroblocks, "
                f"e.g. 8192x4352; this is {mbw * mbh})")
    return None


def fit_paste_back(photo: np.ndarray, matrix: np.ndarray, max_size: int = PASTE_BACK_MAX_SIZE,
                   name: str = "the photo") -> tuple[np.ndarray, np.ndarray, str | None]:
    """The frame a pasted-back video is drawn on: ``(background, matrix, note)``.

    The photo is scaled down so that its longer side is at most ``max_size`` (0: never scaled) and cut
    to even sizes (yuv420p); ``matrix`` (photo -> crop) is adjusted to the scaled frame. ``note`` says
    what was done (None when the photo is used as it is). Raises ValueError for a frame beyond H.264's
    largest level, or a photo too small to paste into.
    """
    h, w = photo.shape[:2]
    if max_size < 0:
        raise ValueError(f"max size must be 0 (no cap) or a number of pixels, got {max_size}")
    scale = min(1.0, max_size / max(h, w)) if max_size else 1.0
    nw, nh = (w - w % 2, h - h % 2) if scale == 1.0 else (2 * round(w * scale / 2), 2 * round(h * scale / 2))
    if min(nw, nh) < 2:
        raise ValueError(f"{name}: too small ({w}x{h}) to paste back into; use a larger photo or a larger max size")
    problem = _h264_problem(nw, nh)
    if problem is not None:
        raise ValueError(f"{name}: a pasted-back video of {problem}; scale it down (--max-size 1920, the default)")
    if scale == 1.0:
        return photo[:nh, :nw], np.asarray(matrix, np.float64), None
    resample = Image.Resampling.LANCZOS
    background = np.asarray(Image.fromarray(np.ascontiguousarray(photo)).resize((nw, nh), resample))
    sx, sy = w / nw, h / nh  # scaled frame -> photo, pixel centres kept
    to_photo = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]])
    note = (f"{name} is {w}x{h}: the pasted-back video is scaled to {nw}x{nh} (longer side <= {max_size}); "
            "pass --max-size 0 for the full size")
    return background, compose(np.asarray(matrix, np.float64), to_photo), note
