"""Evaluation metrics for talking-face generation (PC-AVS protocol), on arrays.

Everything takes NumPy arrays (frames, landmarks, embeddings, features), never
files. Image metrics live in :mod:`pcavs.eval.ssim` and :mod:`pcavs.eval.cpbd`,
landmark distance in :mod:`pcavs.eval.landmarks`, head pose in
:mod:`pcavs.eval.headpose`; they are re-exported here. This module adds the
embedding and audio-visual sync helpers.
"""

from __future__ import annotations

import numpy as np

from pcavs.eval.cpbd import canny, cpbd
from pcavs.eval.headpose import (
    MODEL_LANDMARK_INDICES,
    MODEL_POINTS_3D,
    camera_matrix,
    euler_to_matrix,
    head_pose_from_landmarks,
    head_pose_sequence,
    matrix_to_euler,
    pose_error,
)
from pcavs.eval.landmarks import MOUTH, lmd
from pcavs.eval.ssim import luma_bt601, psnr, psnr_batch, ssim, ssim_batch

__all__ = [
    "MODEL_LANDMARK_INDICES",
    "MODEL_POINTS_3D",
    "MOUTH",
    "camera_matrix",
    "canny",
    "cpbd",
    "csim",
    "euler_to_matrix",
    "head_pose_from_landmarks",
    "head_pose_sequence",
    "lmd",
    "luma_bt601",
    "matrix_to_euler",
    "pose_error",
    "psnr",
    "psnr_batch",
    "ssim",
    "ssim_batch",
    "sync_offset",
    "sync_offset_from_scores",
    "sync_scores",
    "sync_scores_from_similarity",
]

_EPS = 1e-12


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), _EPS)


def csim(emb_a: np.ndarray, emb_b: np.ndarray) -> np.ndarray | float:
    """Cosine similarity along the last axis, broadcasting leading axes.

    ``(D,)`` vs ``(D,)`` gives a float; ``(N, D)`` vs ``(N, D)`` or ``(D,)`` gives ``(N,)``.
    A zero vector has similarity 0 with everything.
    """
    a = np.asarray(emb_a, dtype=np.float64)
    b = np.asarray(emb_b, dtype=np.float64)
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"embedding sizes differ: {a.shape} vs {b.shape}")
    s = np.sum(_unit(a) * _unit(b), axis=-1)
    return float(s) if s.ndim == 0 else s


def sync_scores(audio: np.ndarray, visual: np.ndarray, max_shift: int) -> np.ndarray:
    """Mean cosine similarity of ``visual[t]`` with ``audio[t + k]`` for k = -K..K; shape ``(2K+1,)``.

    ``audio`` and ``visual`` are per-frame features ``(T, D)`` (same frame rate;
    ``T`` may differ, only overlapping pairs are used). Index ``i`` is shift
    ``k = i - K``.
    """
    a = _unit(np.asarray(audio, dtype=np.float64))
    v = _unit(np.asarray(visual, dtype=np.float64))
    if a.ndim != 2 or v.ndim != 2 or a.shape[1] != v.shape[1]:
        raise ValueError(f"expected (T, D) features with equal D, got {a.shape} and {v.shape}")
    return sync_scores_from_similarity(v @ a.T, max_shift)


def sync_scores_from_similarity(sim: np.ndarray, max_shift: int) -> np.ndarray:
    """Per-shift mean of ``sim[t, t + k]`` for k = -K..K, from any ``(T_v, T_a)`` similarity matrix.

    Use this with a custom score (e.g. negative L2 distance, SyncNet style);
    higher must mean "more in sync". Shifts without overlap score ``-inf``.
    """
    sim = np.asarray(sim, dtype=np.float64)
    if sim.ndim != 2:
        raise ValueError(f"expected a 2-D similarity matrix, got {sim.shape}")
    if max_shift < 0:
        raise ValueError("max_shift must be >= 0")
    out = np.full(2 * max_shift + 1, -np.inf)
    for i, k in enumerate(range(-max_shift, max_shift + 1)):
        diag = np.diagonal(sim, offset=k)  # entries sim[t, t + k]
        if diag.size:
            out[i] = diag.mean()
    return out


def sync_offset_from_scores(scores: np.ndarray) -> tuple[int, float]:
    """(offset, confidence) from a :func:`sync_scores` curve: argmax shift and max - median.

    SyncNet reports ``median(dist) - min(dist)``; with similarities instead of
    distances the same idea is ``max - median``. Exact ties go to the most negative
    shift (first maximum). Shifts scored ``-inf`` (no overlap) are ignored by the median.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or s.size % 2 != 1:
        raise ValueError("scores must be 1-D with odd length 2K+1")
    k = s.size // 2
    i = int(np.argmax(s))
    finite = s[np.isfinite(s)]
    conf = float(s[i] - np.median(finite)) if finite.size else 0.0
    return i - k, conf


def sync_offset(audio: np.ndarray, visual: np.ndarray, max_shift: int = 15) -> tuple[int, float]:
    """Shift k in [-K, K] maximising mean cos(visual[t], audio[t + k]) and its confidence.

    A positive offset means video frame ``t`` matches audio frame ``t + k``, i.e. the
    audio lags the video by ``k`` frames. Confidence is max minus median of the
    per-shift scores (0 when all shifts score alike).
    """
    return sync_offset_from_scores(sync_scores(audio, visual, max_shift))
