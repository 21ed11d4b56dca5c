"""The official PC-AVS face alignment, plus the affine helpers shared by tracking and paste-back.

Official procedure (``scripts/align_68.py`` + the test loader), reproduced here:

1. three points from the 68 landmarks: left-eye centre (mean of 36-41), right-eye centre (42-47) and
   the mouth centre, which the official code takes as the mean of the *inner* lip points 60-67;
2. a least-squares similarity (Umeyama; rotation + uniform scale + translation) mapping them to
   (87, 59), (137, 59), (112, 120) in a 224x224 frame; the translation is then shifted so that the
   mouth lands exactly on (112, 120) (the official per-frame "mouth bias"; for one image the shift is
   applied in full);
3. bilinear warp into the 224 frame, rounded to uint8 (the official pipeline stores JPEGs here);
4. the loader crop: rows 0-191, columns 16-207, resized back to 224x224 with bilinear interpolation
   (cv2.resize's default); for smaller presets (``size`` < 192) an area (box) filter is used instead
   so the downscale does not alias.

All matrices use the pixel-centre convention of cv2/PIL (pixel (i, j) has its centre at x=j, y=i),
so the composite matrix maps landmarks exactly to where they appear in the network input:
x' = (x - 16 + 0.5) * size/192 - 0.5, y' = (y + 0.5) * size/192 - 0.5.
The border of the warp defaults to edge replication (the official crop script pads with black; pass
``border="constant"`` for that).  Faces that are strongly downscaled by the warp are first box-filtered
by an integer factor, so high-resolution photos do not alias.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from .detect import as_rgb_uint8

__all__ = [
    "ALIGN_FRAME",
    "LOADER_CROP",
    "TEMPLATE_224",
    "alignment_matrix",
    "align_face",
    "clip_frame_matrices",
    "crop_matrix",
    "frame_matrix",
    "invert_affine",
    "official_sequence_matrices",
    "similarity_lstsq",
    "three_points",
    "transform_points",
    "warp_to_input",
]

ALIGN_FRAME = 224
#: The loader's crop of the 224 frame: (top, bottom, left, right), half-open.
LOADER_CROP = (0, 192, 16, 208)
#: Where the official script puts left eye, right eye and mouth in the 224 frame.
TEMPLATE_224 = np.array([[87.0, 59.0], [137.0, 59.0], [112.0, 120.0]])


# ----------------------------------------------------------------------------- affine algebra
def _h(m: np.ndarray) -> np.ndarray:
    return np.vstack([np.asarray(m, dtype=np.float64), [0.0, 0.0, 1.0]])


def compose(*mats: np.ndarray) -> np.ndarray:
    """``compose(a, b)`` applies ``b`` first, then ``a`` (like matrix products)."""
    out = np.eye(3)
    for m in mats:
        out = out @ _h(m)
    return out[:2]


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    return np.linalg.inv(_h(m))[:2]


def transform_points(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (N, 2) points."""
    pts = np.asarray(pts, dtype=np.float64)
    return pts @ np.asarray(m, dtype=np.float64)[:, :2].T + np.asarray(m, dtype=np.float64)[:, 2]


def similarity_lstsq(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama 1991, no reflection) with ``dst ~ s R src + t``; 2x3."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s_c, d_c = src - mu_s, dst - mu_d
    cov = d_c.T @ s_c / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # forbid reflections
        sign[-1] = -1.0
    rot = u @ np.diag(sign) @ vt
    var_s = (s_c**2).sum() / len(src)
    scale = float((sig * sign).sum() / var_s)
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


# ----------------------------------------------------------------------------- the alignment
def three_points(landmarks: np.ndarray) -> np.ndarray:
    """(3, 2): left-eye centre, right-eye centre, inner-mouth centre (official definition)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {lm.shape}")
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[60:68].mean(0)])


def frame_matrix(landmarks: np.ndarray, *, pin_mouth: bool = True) -> np.ndarray:
    """2x3 matrix from the original image to the official 224 alignment frame (before the crop)."""
    pts = three_points(landmarks)
    m = similarity_lstsq(pts, TEMPLATE_224)
    if pin_mouth:
        m[:, 2] += TEMPLATE_224[2] - transform_points(m, pts[2:3])[0]
    return m


def crop_matrix(size: int = 224) -> np.ndarray:
    """2x3 matrix from the 224 frame to the network input: the loader crop, resized to ``size``."""
    top, bottom, left, right = LOADER_CROP
    kx, ky = size / (right - left), size / (bottom - top)
    # pixel-centre convention of cv2.resize / PIL: x_out = (x_in + 0.5) * k - 0.5
    return np.array([[kx, 0.0, (0.5 - left) * kx - 0.5], [0.0, ky, (0.5 - top) * ky - 0.5]])


def alignment_matrix(landmarks: np.ndarray, size: int = 224, *, pin_mouth: bool = True) -> np.ndarray:
    """Composite 2x3 matrix: original image -> the ``size`` x ``size`` network input."""
    return compose(crop_matrix(size), frame_matrix(landmarks, pin_mouth=pin_mouth))


def clip_frame_matrices(landmarks_seq: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The official video procedure for one shot: 2x3 matrices from each frame to the 224 alignment frame.

    One similarity is fitted to the shot-averaged three points, so the head's roll, zoom and in-plane
    motion inside the shot stay visible in the crops; each frame then gets a translation that pins its
    mouth to the template, smoothed over time as ``bias = 0.2 * previous + 0.8 * current``.
    """
    pts = [three_points(lm) for lm in landmarks_seq]
    if not pts:
        return []
    base = similarity_lstsq(np.mean(pts, axis=0), TEMPLATE_224)
    out, prev = [], None
    for p in pts:
        bias = TEMPLATE_224[2] - transform_points(base, p[2:3])[0]
        if prev is not None:
            bias = 0.2 * prev + 0.8 * bias
        prev = bias
        m = base.copy()
        m[:, 2] += bias
        out.append(m)
    return out


def official_sequence_matrices(landmarks_seq: Sequence[np.ndarray], size: int = 224) -> list[np.ndarray]:
    """Composite matrices (original -> ``size`` network input) of :func:`clip_frame_matrices` for one
    shot held in memory; :mod:`pcavs.face.clip` applies it shot by shot to streamed videos."""
    crop = crop_matrix(size)
    return [compose(crop, m) for m in clip_frame_matrices(landmarks_seq)]


# ----------------------------------------------------------------------------- warping
def sample_bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray, border: str = "replicate",
                    fill: float = 0.0) -> np.ndarray:
    """Bilinear samples of ``img`` (HxW or HxWxC) at float pixel coords; returns float32."""
    if border not in ("replicate", "constant"):
        raise ValueError(f"border must be 'replicate' or 'constant', got {border!r}")
    src = np.asarray(img, dtype=np.float32)
    pad = [(1, 1), (1, 1)] + [(0, 0)] * (src.ndim - 2)
    # One pixel of padding makes out-of-image neighbours either the edge (replicate) or ``fill``
    # (constant, like cv2.BORDER_CONSTANT); coordinates further out are clamped onto that ring.
    if border == "replicate":
        src = np.pad(src, pad, mode="edge")
    else:
        src = np.pad(src, pad, mode="constant", constant_values=fill)
    hp, wp = src.shape[:2]
    xs = np.clip(np.asarray(x, dtype=np.float64) + 1.0, 0.0, wp - 1.0)
    ys = np.clip(np.asarray(y, dtype=np.float64) + 1.0, 0.0, hp - 1.0)
    x0 = np.minimum(np.floor(xs).astype(np.intp), wp - 2)
    y0 = np.minimum(np.floor(ys).astype(np.intp), hp - 2)
    fx = (xs - x0).astype(np.float32)
    fy = (ys - y0).astype(np.float32)
    if src.ndim == 3:
        fx, fy = fx[..., None], fy[..., None]
    top = src[y0, x0] * (1 - fx) + src[y0, x0 + 1] * fx
    bot = src[y0 + 1, x0] * (1 - fx) + src[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bot * fy


def warp_affine(img: np.ndarray, m: np.ndarray, out_size: tuple[int, int], border: str = "replicate",
                antialias: bool = True) -> np.ndarray:
    """Warp ``img`` by the forward 2x3 matrix ``m`` (src -> dst) into an (h, w) float32 image."""
    h_out, w_out = out_size
    m = np.asarray(m, dtype=np.float64)
    inv = invert_affine(m)
    gx, gy = np.meshgrid(np.arange(w_out, dtype=np.float64), np.arange(h_out, dtype=np.float64))
    sx = inv[0, 0] * gx + inv[0, 1] * gy + inv[0, 2]
    sy = inv[1, 0] * gx + inv[1, 1] * gy + inv[1, 2]
    # Only the source region under the output is touched: big frames stay cheap.
    h, w = img.shape[:2]
    x_lo = int(np.clip(np.floor(sx.min()) - 2, 0, w - 1))
    x_hi = int(np.clip(np.ceil(sx.max()) + 3, x_lo + 1, w))
    y_lo = int(np.clip(np.floor(sy.min()) - 2, 0, h - 1))
    y_hi = int(np.clip(np.ceil(sy.max()) + 3, y_lo + 1, h))
    region = img[y_lo:y_hi, x_lo:x_hi]
    # Samples only leave the region on sides where it reaches the image edge, so the border rule
    # applied at the region's edge is the image's border rule.
    sx, sy = sx - x_lo, sy - y_lo
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    factor = int(np.floor(1.0 / scale)) if antialias and scale < 0.5 else 1
    if factor > 1 and min(region.shape[:2]) >= 2 * factor:
        # Box-reduce by an integer factor first so the bilinear warp never skips source pixels.
        region = np.asarray(Image.fromarray(np.ascontiguousarray(region)).reduce(factor))
        sx, sy = (sx + 0.5) / factor - 0.5, (sy + 0.5) / factor - 0.5
    return sample_bilinear(region, sx, sy, border)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def warp_to_input(img: Any, frame_m: np.ndarray, size: int = 224, border: str = "replicate") -> np.ndarray:
    """Official two-stage crop given a frame matrix: warp to the 224 frame, loader crop, resize."""
    img = as_rgb_uint8(img)
    frame = _to_uint8(warp_affine(img, frame_m, (ALIGN_FRAME, ALIGN_FRAME), border))
    top, bottom, left, right = LOADER_CROP
    crop = frame[top:bottom, left:right]
    if size == crop.shape[0]:
        return np.ascontiguousarray(crop)
    resample = Image.BILINEAR if size > crop.shape[0] else Image.BOX
    return np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((size, size), resample))


def align_face(img: Any, landmarks: np.ndarray, size: int = 224, *, border: str = "replicate",
               pin_mouth: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Official aligned crop of a face.

    Returns ``(crop, matrix)``: a ``size`` x ``size`` x 3 uint8 network input and the composite 2x3
    matrix from original-image pixels to it (``invert_affine(matrix)`` maps back, for paste-back).
    """
    fm = frame_matrix(landmarks, pin_mouth=pin_mouth)
    return warp_to_input(img, fm, size, border), compose(crop_matrix(size), fm)
