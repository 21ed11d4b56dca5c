"""Landmark Distance (LMD), as used by ATVGnet (Chen et al. 2019) and PC-AVS.

Exact definition implemented by :func:`lmd`:

* Inputs are 68-point (iBUG/dlib) landmarks, ``(T, 68, 2)`` or ``(68, 2)``, in the
  pixel coordinates of the *aligned 224x224 face crop*; aligning both videos the
  same way is the caller's job (this module never sees images).
* The evaluated set is the mouth (indices 48-67, 20 points) or all 68 points.
* Per frame, the centroid of the evaluated set is subtracted from that set, in
  the generated and the real frame independently, so a global translation
  (head drift, crop jitter) does not count; scale and rotation are not removed.
* LMD is the Euclidean distance between corresponding centred points, averaged
  over points and frames, in crop pixels.
"""

from __future__ import annotations

import numpy as np

MOUTH = slice(48, 68)  # iBUG-68 outer lip 48-59, inner lip 60-67
N_POINTS = 68


def lmd(landmarks_gen: np.ndarray, landmarks_real: np.ndarray, mouth_only: bool = True) -> float:
    """Mean per-point Euclidean distance between centred landmark sets (crop pixels)."""
    gen = _as_frames(landmarks_gen)
    real = _as_frames(landmarks_real)
    if gen.shape != real.shape:
        raise ValueError(f"landmark shapes differ: {gen.shape} vs {real.shape}")
    if mouth_only:
        gen, real = gen[:, MOUTH], real[:, MOUTH]
    gen = gen - gen.mean(axis=1, keepdims=True)
    real = real - real.mean(axis=1, keepdims=True)
    return float(np.linalg.norm(gen - real, axis=-1).mean())


def _as_frames(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[1:] != (N_POINTS, 2):
        raise ValueError(f"expected (T, 68, 2) or (68, 2) landmarks, got {np.shape(x)}")
    if a.shape[0] == 0:
        raise ValueError("no frames")
    return a
