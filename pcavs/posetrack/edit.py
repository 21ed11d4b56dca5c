"""Edits of a pose track: trim, time offset and speed, loop mode, smoothing, motion amplitude, start from
the photo's pose, mirror, and concatenation or cross-fade of two tracks.

Frame-space edits (trim, offset, speed, smoothing, concatenation) act on every per-frame array, cached
pose codes included, so a track keeps producing crops from its source videos. Code-space edits are
recorded in ``meta`` and applied when codes are made (:func:`pcavs.posetrack.apply_code_edits`):
``amplitude`` scales each frame's code around the track's mean code and ``start_from_photo`` shifts the
codes so that frame 0 equals the photo's own pose code. ``mirror`` flips the crops before encoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .codes import LOOP_MODES
from .file import PoseTrack, TrackFileError

__all__ = ["TrackEdit", "concat_tracks", "edit_track", "parse_trim"]

_LINEAR = ("landmarks", "matrix", "align", "angles")  # interpolated between rows
_NEAREST = ("score", "filled", "shot", "frame", "source")  # taken from the nearest row


def parse_trim(text: str | None, option: str = "--trim") -> tuple[float, float] | None:
    """``"1.5:4"`` -> ``(1.5, 4.0)`` seconds; None for no trim."""
    if not text:
        return None
    try:
        a, b = (float(v) for v in text.split(":"))
    except ValueError:
        raise TrackFileError(f"{option} {text!r}: expected START:END in seconds, e.g. 1.5:4") from None
    return a, b


@dataclass(frozen=True)
class TrackEdit:
    """One edit pass, applied in field order; ``None`` leaves a setting as it is."""

    trim: tuple[float, float] | None = None  #: keep [start, end) seconds
    speed: float = 1.0  #: 2 = twice as fast (half the frames)
    offset: float = 0.0  #: seconds: > 0 holds the first frame that long, < 0 starts that far in
    smooth: float = 0.0  #: Gaussian sigma in frames, within each shot
    mirror: bool = False  #: flip the crops left-right (toggles)
    amplitude: float | None = None  #: scale of the motion around the mean code (1 = unchanged)
    start_from_photo: bool | None = None  #: shift the codes so frame 0 is the photo's own pose
    loop: str | None = None  #: how the track continues past its end: pingpong | repeat | hold

    def __post_init__(self) -> None:
        if self.trim is not None and not 0 <= self.trim[0] < self.trim[1]:
            raise TrackFileError(f"trim must be START:END seconds with 0 <= START < END, got {self.trim}")
        if not 0.05 <= self.speed <= 20:
            raise TrackFileError(f"speed must be in 0.05..20, got {self.speed}")
        if self.smooth < 0:
            raise TrackFileError(f"smoothing sigma must be >= 0 frames, got {self.smooth}")
        if self.amplitude is not None and not 0 <= self.amplitude <= 5:
            raise TrackFileError(f"amplitude must be in 0..5, got {self.amplitude}")
        if self.loop is not None and self.loop not in LOOP_MODES:
            raise TrackFileError(f"loop must be one of {', '.join(LOOP_MODES)}, got {self.loop!r}")


def _segments(track: PoseTrack) -> np.ndarray:
    """Segment id per row: a new segment wherever the source or the shot changes."""
    change = (np.diff(track.source) != 0) | (np.diff(track.shot) != 0)
    return np.concatenate([[0], np.cumsum(change)])


def _resample(track: PoseTrack, pos: np.ndarray) -> PoseTrack:
    """Rows at fractional positions ``pos``: linear between rows of one segment, else the nearest row."""
    n = len(track)
    pos = np.clip(np.asarray(pos, np.float64), 0, n - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, n - 1)
    w = pos - i0
    seg = _segments(track)
    w = np.where(seg[i0] == seg[i1], w, np.round(w))
    near = np.where(w >= 0.5, i1, i0)
    out = track.select(near)

    def lerp(a: np.ndarray) -> np.ndarray:
        shape = (-1,) + (1,) * (a.ndim - 1)
        return (1 - w.reshape(shape)) * a[i0] + w.reshape(shape) * a[i1]

    for key in _LINEAR:
        setattr(out, key, lerp(getattr(track, key)).astype(getattr(track, key).dtype))
    out.codes = {h: lerp(c).astype(np.float32) for h, c in track.codes.items()}
    out.time = np.arange(len(pos)) / track.fps
    return out


def _smooth(track: PoseTrack, sigma: float) -> PoseTrack:
    out = track.select(np.arange(len(track)))
    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    seg = _segments(track)
    arrays = {k: getattr(track, k) for k in _LINEAR} | {f"codes:{h}": c for h, c in track.codes.items()}
    for s in np.unique(seg):
        idx = np.flatnonzero(seg == s)
        for key, a in arrays.items():
            x = a[idx].reshape(len(idx), -1).astype(np.float64)
            padded = np.pad(x, ((radius, radius), (0, 0)), mode="edge")  # ends held, not pulled to zero
            y = np.stack([np.convolve(padded[:, j], taps / taps.sum(), mode="valid") for j in range(x.shape[1])], 1)
            target = out.codes[key[6:]] if key.startswith("codes:") else getattr(out, key)
            target[idx] = y.reshape(a[idx].shape).astype(a.dtype)
    return out


def edit_track(track: PoseTrack, edit: TrackEdit) -> PoseTrack:
    """A new track with ``edit`` applied (the input is not changed)."""
    fps, out = track.fps, track.select(np.arange(len(track)))  # a copy: the input stays as it is
    done: list[str] = []
    if edit.trim is not None:
        a, b = (int(round(v * fps)) for v in edit.trim)
        b = min(b, len(out))
        if a >= b:
            raise TrackFileError(f"trim {edit.trim[0]:g}:{edit.trim[1]:g} s leaves no frame of the "
                                 f"{len(out) / fps:.2f} s track")
        out = out.select(np.arange(a, b))
        done.append(f"trim {edit.trim[0]:g}:{edit.trim[1]:g}")
    if edit.speed != 1.0 or edit.offset != 0.0:
        n = len(out)
        lead = edit.offset * fps  # frames held (> 0) or skipped (< 0) at the start
        count = max(1, int(np.floor((n - 1) / edit.speed + lead)) + 1)
        out = _resample(out, (np.arange(count) - lead) * edit.speed)
        done.append(f"speed {edit.speed:g} offset {edit.offset:g}")
    if edit.smooth > 0:
        out = _smooth(out, edit.smooth)
        done.append(f"smooth {edit.smooth:g}")
    meta = dict(out.meta)
    if edit.mirror:
        out.angles = out.angles * np.array([-1, 1, -1], np.float32)  # a mirror turns yaw and roll around
        out.codes = {}  # the codes of unflipped crops no longer apply
        meta["mirror"] = not meta.get("mirror", False)
        done.append("mirror")
    for key in ("amplitude", "start_from_photo", "loop"):
        value = getattr(edit, key)
        if value is not None:
            meta[key] = value
            done.append(f"{key} {value}")
    out.time = np.arange(len(out)) / fps
    out.meta = {**meta, "edits": [*meta.get("edits", []), *done]}
    return out


def concat_tracks(first: PoseTrack, second: PoseTrack, crossfade: int = 0) -> PoseTrack:
    """``first`` then ``second``; with ``crossfade`` > 0 the last and first ``crossfade`` frames overlap and
    their cached pose codes are blended linearly (crops switch from one video to the other halfway)."""
    if abs(first.fps - second.fps) > 1e-9:
        raise TrackFileError(f"cannot join tracks at {first.fps:g} and {second.fps:g} fps; extract both at one rate")
    if first.meta.get("crop_size") != second.meta.get("crop_size"):
        raise TrackFileError("cannot join tracks of different crop sizes; extract both with the same --size")
    if bool(first.meta.get("mirror")) != bool(second.meta.get("mirror")):
        raise TrackFileError("cannot join a mirrored and an unmirrored track; mirror both or neither")
    k = int(crossfade)
    if not 0 <= k <= min(len(first), len(second)):
        raise TrackFileError(f"cross-fade of {k} frames is longer than a track ({len(first)} and {len(second)} frames)")
    b = second.select(np.arange(len(second)))
    b.source = b.source + len(first.meta["sources"])
    b.shot = b.shot + int(first.shot.max()) + 1
    keys = [h for h in first.codes if h in second.codes]
    if k:
        if not keys:
            raise TrackFileError("a cross-fade blends pose codes: cache them in both tracks first "
                                 "(`pcavs pose extract --weights W`, or `pcavs pose edit --weights W`)")
        w = (np.arange(k) + 1) / (k + 1)
        blended = {h: (1 - w[:, None]) * first.codes[h][-k:] + w[:, None] * second.codes[h][:k] for h in keys}
        half = k // 2
        head, tail = first.select(np.arange(len(first) - k + half)), b.select(np.arange(half, len(b)))
        rows = [head, tail]
    else:
        rows, blended = [first, b], {}
    arrays = {key: np.concatenate([getattr(r, key) for r in rows]) for key in (*_LINEAR, *_NEAREST)}
    codes = {h: np.concatenate([r.codes[h] for r in rows]) for h in keys}
    for h, c in blended.items():  # the overlap: rows len(first) - k .. len(first) - 1 of the result
        codes[h][len(first) - k : len(first)] = c
    n = len(arrays["frame"])
    meta = {**first.meta, "sources": [*first.meta["sources"], *second.meta["sources"]],
            "edits": [*first.meta.get("edits", []), f"concat {second.name} crossfade {k}"]}
    return PoseTrack(time=np.arange(n) / first.fps, **arrays, meta=meta, codes=codes)
