"""What every evaluation module shares: the error, the options, the crop size and input kinds."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pcavs.errors import UserError
from pcavs.media import require_file

CROP_SIZE = 224
MAX_SHIFT = 15  # sync offsets searched, frames either way, as SyncNet evaluations use (Wav2Lip's vshift=15)
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")

#: (key, column title, better) of every metric, in table order.
METRICS: tuple[tuple[str, str, str], ...] = (
    ("ssim", "SSIM", "higher"),
    ("psnr", "PSNR", "higher"),
    ("cpbd", "CPBD", "higher"),
    ("lmd_mouth", "LMD-m", "lower"),
    ("lmd_face", "LMD-f", "lower"),
    ("csim", "CSIM", "higher"),
    ("pose_error", "Pose", "lower"),
    ("sync_offset", "Offset", "closer to 0"),
    ("sync_confidence", "Sync-C", "higher"),
    ("lse_d", "LSE-D", "lower"),
    ("lse_c", "LSE-C", "higher"),
)

FrameSource = str | os.PathLike[str] | np.ndarray | Sequence[np.ndarray]


class EvaluationError(UserError, ValueError):
    """Inputs that cannot be evaluated; the message names the file and what to do."""


@dataclass(frozen=True)
class EvalOptions:
    """How to evaluate; the defaults are the PC-AVS protocol."""

    fps: int = 25
    generated_aligned: bool | None = None  # None: track faces (square face-less videos count as crops)
    reference_aligned: bool | None = None
    max_shift: int = MAX_SHIFT
    psnr_cap: float = 100.0
    use_cnn: bool = False  # dlib's CNN detector as a fallback: finds more faces, ~1-3 s per face-less frame
    smooth_window: int = 9  # landmark smoothing of the face tracker (odd; 1 = off)
    batch_size: int = 16
    embeddings: bool = True  # dlib face descriptors (CSIM, identity over time): 0.1-0.2 s per face on a CPU
    embedding_stride: int = 1  # describe every n-th frame only (CSIM is then a mean over those frames)

    def __post_init__(self) -> None:
        if self.embedding_stride < 1 or self.batch_size < 1 or self.max_shift < 0:
            raise EvaluationError("embedding_stride and batch_size must be >= 1 and max_shift >= 0")
        if self.smooth_window < 1 or self.smooth_window % 2 == 0:
            raise EvaluationError(f"the smoothing window must be a positive odd number, got {self.smooth_window}")


def check_file(path: str | os.PathLike[str], role: str) -> Path:
    return require_file(path, role, EvaluationError)

