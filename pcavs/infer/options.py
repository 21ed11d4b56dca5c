"""What a generation is asked for and what it returns: options (every default) and the result."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from numbers import Real
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from pcavs.face.paste import PASTE_BACK_MAX_SIZE
from pcavs.posetrack import (
    TrackEdit,
)

from .sources import (
    InputError,
)

PRECISIONS = ("fp32", "bf16")
PoseMode = Literal["video", "still", "frontal", "self"]
POSE_MODES: tuple[str, ...] = ("video", "still", "frontal", "self")
DETECTORS: tuple[str, ...] = ("hog", "hog+cnn")  # pose-video tracking (as pcavs evaluate --detector)
NOISE_MODES: tuple[str, ...] = ("random", "const", "none")
MOUTH_WEIGHT_RANGE = (0.0, 5.0)  # accepted --mouth-weight values (the model's default is 1.2)

ImageSource = str | os.PathLike[str] | np.ndarray
AudioSource = str | os.PathLike[str] | np.ndarray | torch.Tensor
PoseSource = str | os.PathLike[str] | np.ndarray | Iterable[np.ndarray]


@dataclass(frozen=True)
class GenerationOptions:
    """How to generate; every field has the CLI's default."""

    mouth_weight: float | None = None  # scale of the speech feature; None: the model's (1.2)
    batch_size: int = 8
    paste_back: bool = False  # blend each face into the full identity photo
    seed: int = 0
    noise: str = "random"  # generator noise: random (official, seeded), const, none
    # bf16 autocast: 1.7x faster on a 2-core CPU (official preset), max |diff| about 1e-3 vs fp32
    precision: str = "fp32"
    align_audio: bool = False  # True: centre each speech window on its frame (only for models trained so)
    progress: bool = False  # tqdm bar on stderr
    pose_face_index: int = 0  # which face the pose-video tracker follows (0 = largest)
    max_gap: int = 12  # longest run of face-less pose frames that is interpolated
    overwrite: bool = False  # replace an existing output file (never an input)
    max_size: int = PASTE_BACK_MAX_SIZE  # paste-back: longest output side (0: the photo's size)
    detector: str = "hog+cnn"  # pose-video tracking: hog (fast, frontal faces) or hog+cnn (CNN where HOG misses)
    pose_edit: TrackEdit | None = None  # trim, retime, loop, smooth, amplitude, mirror... of the pose motion

    def __post_init__(self) -> None:
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise InputError(f"batch size must be 1 or more, got {self.batch_size!r}")
        if self.noise not in NOISE_MODES:
            raise InputError(f"unknown noise mode {self.noise!r}; choose one of {', '.join(NOISE_MODES)}")
        if self.precision not in PRECISIONS:
            raise InputError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        w, (lo, hi) = self.mouth_weight, MOUTH_WEIGHT_RANGE
        if w is not None and not (isinstance(w, Real) and not isinstance(w, bool) and math.isfinite(w)
                                  and lo <= w <= hi):
            raise InputError(f"mouth weight must be a number between {lo:g} and {hi:g}, got {w!r}")
        if self.detector not in DETECTORS:
            raise InputError(f"unknown detector {self.detector!r}; choose one of {', '.join(DETECTORS)}")
        if self.max_size < 0:
            raise InputError(f"max size must be 0 (no cap) or a number of pixels, got {self.max_size}")
        if self.max_gap < 0 or self.pose_face_index < 0:
            raise InputError("max_gap and pose_face_index must be >= 0")

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> GenerationOptions:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise TypeError(f"unknown generation option(s): {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
        return cls(**kwargs)


# ----------------------------------------------------------------------------------------- result
@dataclass
class GenerationResult:
    """What was written."""

    output: Path
    num_frames: int
    fps: int
    width: int
    height: int
    audio_duration: float  # seconds of audio muxed in
    elapsed: float  # wall seconds of generation and encoding (model loading excluded)
    first_frame_s: float  # wall seconds from the start of generation to the first frame written
    pose_mode: str
    pose_source_frames: int | None  # source frames the pose was taken from (video / self modes)
    av_offset_ms: float  # speech-window centre minus frame time (mean), by construction
    av_offset_max_ms: float  # the largest per-frame value (row rounding at fps other than 25)
    warnings: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        """Seconds of video (num_frames / fps)."""
        return self.num_frames / self.fps

    @property
    def frames_per_second(self) -> float:
        """Generation speed."""
        return self.num_frames / self.elapsed if self.elapsed > 0 else float("inf")

    def summary(self) -> str:
        """``wrote OUT.mp4: N frames, S s, F frames/s (pose: MODE), A/V offset 0 ms``."""
        pose = f"pose: {self.pose_mode}"
        offset = f"A/V offset {round(self.av_offset_ms):d} ms"  # round(): no "-0 ms" from float dust
        if self.av_offset_max_ms - abs(self.av_offset_ms) > 0.5:
            offset += f" (±{self.av_offset_max_ms:.0f} ms row rounding at {self.fps} fps)"
        return (
            f"wrote {self.output}: {self.num_frames} frames, {self.duration:.2f} s, "
            f"{self.frames_per_second:.1f} frames/s ({pose}), {offset}"
        )
