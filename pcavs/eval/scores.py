"""One video's scores, their mean over many and the printed table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pcavs.eval.common import METRICS
from pcavs.fileio import json_safe


@dataclass
class VideoScores:
    """Everything measured for one generated video (None: not measurable with the given inputs)."""

    generated: str
    reference: str | None = None
    audio: str | None = None
    pose_source: str | None = None
    identity: str | None = None
    frames_generated: int = 0
    frames_reference: int | None = None
    frames_compared: int | None = None
    faces_generated: int = 0  # frames with a detected face
    faces_reference: int | None = None
    ssim: float | None = None
    psnr: float | None = None
    cpbd: float | None = None
    lmd_mouth: float | None = None
    lmd_face: float | None = None
    csim: float | None = None
    pose_error: float | None = None
    pose_error_yaw: float | None = None
    pose_error_pitch: float | None = None
    pose_error_roll: float | None = None
    sync_offset: int | None = None  # frames; > 0: the sound comes later than the picture
    sync_offset_ms: float | None = None
    sync_confidence: float | None = None
    sync_reliable: bool | None = None  # False: confidence below the expert's threshold, sync_offset is None
    sync_expert: str | None = None  # which sync expert measured sync_offset / sync_confidence
    sync_threshold: float | None = None  # that expert's calibrated confidence threshold
    lse_d: float | None = None
    lse_c: float | None = None
    syncnet_offset: int | None = None  # official SyncNet sign (vshift - argmin): > 0 means the sound is early
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN and infinities become None, numpy numbers Python ones."""
        return json_safe(dict(self.__dict__))


def nanmean_or_none(x: np.ndarray) -> float | None:
    """Mean of the finite values; None when there are none."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None


def aggregate(scores: Sequence[VideoScores]) -> dict[str, Any]:
    """Mean of every metric over the videos that have it, with how many did."""
    mean: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for key, _, _ in METRICS + (("sync_offset_ms", "", ""),):
        vals = [getattr(s, key) for s in scores if s.error is None and getattr(s, key) is not None]
        vals = [float(v) for v in vals if math.isfinite(float(v))]
        mean[key] = float(np.mean(vals)) if vals else None
        counts[key] = len(vals)
    if any(s.sync_offset is not None for s in scores):
        offs = [abs(s.sync_offset) for s in scores if s.sync_offset is not None]
        mean["abs_sync_offset"] = float(np.mean(offs))
        counts["abs_sync_offset"] = len(offs)
    return {"mean": mean, "counts": counts, "videos": len(scores),
            "failed": sum(1 for s in scores if s.error is not None)}


def format_table(scores: Sequence[VideoScores], summary: dict[str, Any] | None = None, width: int = 28) -> str:
    """Plain-text table: one row per video, metrics as columns, then the mean."""
    shown = [m for m in METRICS if any(getattr(s, m[0]) is not None or (m[0] == "sync_offset" and s.sync_reliable
                                                                         is False) for s in scores)]
    # the offset column is wider: it may say "unreliable"
    head = f"{'video':<{width}}" + "".join(f"{title:>{11 if k == 'sync_offset' else 9}}" for k, title, _ in shown)
    lines = [head, "-" * len(head)]

    def cell(v: Any, key: str, s: VideoScores | None = None) -> str:
        if key == "sync_offset" and s is not None and s.sync_reliable is False:
            return f"{'unreliable':>11}"
        if v is None:
            return f"{'-':>{11 if key == 'sync_offset' else 9}}"
        if key == "sync_offset":
            return f"{int(round(v)):>+11d}" if float(v).is_integer() else f"{v:>+11.2f}"
        return f"{v:>9.3f}" if abs(v) < 100 else f"{v:>9.1f}"

    for s in scores:
        name = Path(s.generated).name
        name = name if len(name) <= width - 1 else "..." + name[-(width - 4):]
        if s.error is not None:
            lines.append(f"{name:<{width}}  failed: {s.error.splitlines()[0][:100]}")
            continue
        lines.append(f"{name:<{width}}" + "".join(cell(getattr(s, k), k, s) for k, _, _ in shown))
    if summary is not None and len(scores) > 1:
        lines.append("-" * len(head))
        lines.append(f"{'mean':<{width}}" + "".join(cell(summary["mean"].get(k), k) for k, _, _ in shown))
    return "\n".join(lines)
