"""Smooth random head-pose trajectories for SynthTalk."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

FIELDS = ("yaw", "pitch", "roll", "tx", "ty", "scale")
#: The renderer's yaw, pitch and roll turn the head the opposite way from the project's convention
#: (:mod:`pcavs.eval.headpose`: yaw > 0 turns to image left, pitch > 0 nods down, roll > 0 is clockwise in
#: the image; measured: renderer +15 deg reads -25 / -5 / -15 there). Ground truth keeps the renderer's
#: values (the sidecar JSON too); :func:`eval_angles` converts where they are compared with anything.
EVAL_SIGN = -1.0
# Max |deviation| per field (scale deviates from 1). Angles in degrees, tx/ty in image fractions.
LIMITS = {"yaw": 30.0, "pitch": 30.0, "roll": 15.0, "tx": 0.04, "ty": 0.04, "scale": 0.08}
_SALT_POSE = 0x9E
# Frequency bands (Hz) of the three sinusoids per field: slow drift, sway, small talking nods.
_BANDS = ((0.03, 0.12), (0.12, 0.35), (0.35, 0.8))
_BAND_WEIGHT = (1.0, 0.6, 0.12)


def eval_angles(gt: dict[str, Any]) -> np.ndarray:
    """(yaw, pitch, roll) of a SynthTalk ground-truth frame in the project's convention (degrees)."""
    return EVAL_SIGN * np.array([gt["yaw"], gt["pitch"], gt["roll"]], dtype=np.float64)


@dataclass
class PoseTrack:
    """Per-frame head pose; all arrays have shape (T,)."""

    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    tx: np.ndarray
    ty: np.ndarray
    scale: np.ndarray
    fps: float = 25.0

    def __post_init__(self) -> None:
        for f in FIELDS:
            setattr(self, f, np.asarray(getattr(self, f), np.float64).reshape(-1))
        n = {len(getattr(self, f)) for f in FIELDS}
        if len(n) != 1:
            raise ValueError(f"pose fields have different lengths: {n}")

    def __len__(self) -> int:
        return len(self.yaw)

    def __getitem__(self, i: int) -> dict[str, float]:
        return {f: float(getattr(self, f)[i]) for f in FIELDS}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of lists."""
        return {"fps": self.fps, **{f: np.round(getattr(self, f), 5).tolist() for f in FIELDS}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PoseTrack:
        """Inverse of :meth:`to_dict`."""
        return cls(**{f: np.asarray(d[f]) for f in FIELDS}, fps=float(d.get("fps", 25.0)))

    @classmethod
    def constant(cls, num_frames: int, fps: float = 25.0, **values: float) -> PoseTrack:
        """A still head, e.g. ``PoseTrack.constant(10, yaw=25)``."""
        unknown = set(values) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown pose fields {sorted(unknown)}")
        base = {f: 0.0 for f in FIELDS} | {"scale": 1.0} | values
        return cls(**{f: np.full(num_frames, base[f]) for f in FIELDS}, fps=fps)


def sample_pose(seed: int, num_frames: int, fps: float = 25.0, intensity: float | None = None) -> PoseTrack:
    """Random smooth trajectory: per field an offset plus three sinusoids, hard-bounded by ``LIMITS``.

    ``intensity`` in (0, 1] scales the motion (random in [0.3, 1] if None). The
    bound holds by construction: |offset| + sum of amplitudes <= limit.
    """
    rng = np.random.default_rng([seed, _SALT_POSE])
    if intensity is None:
        intensity = float(rng.uniform(0.3, 1.0))
    t = np.arange(num_frames) / fps
    out: dict[str, np.ndarray] = {}
    for f in FIELDS:
        lim = LIMITS[f]
        offset = rng.uniform(-0.3, 0.3) * lim
        budget = (lim - abs(offset)) * intensity
        w = rng.dirichlet(np.ones(3)) * np.array(_BAND_WEIGHT)
        amps = budget * w / w.sum()
        freqs = np.array([rng.uniform(lo, hi) for lo, hi in _BANDS])
        phases = rng.uniform(0, 2 * np.pi, 3)
        v = offset + np.sum(amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t[None, :] + phases[:, None]), 0)
        out[f] = 1.0 + v if f == "scale" else v
    return PoseTrack(**out, fps=fps)
