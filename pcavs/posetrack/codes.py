"""Pose codes of a track: crops made again from the source videos and encoded exactly as generation
encodes a pose video, the code-space edits (motion amplitude, start from the photo's pose) and the loop
modes that carry a track past its end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from .file import PoseTrack, TrackFileError

__all__ = ["DEFAULT_LOOP", "LOOP_MODES", "TrackCodes", "apply_code_edits", "loop_index", "track_codes"]

LOOP_MODES = ("pingpong", "repeat", "hold")
DEFAULT_LOOP = "pingpong"  # a track shorter than the audio plays back and forth unless told otherwise
#: Crops are encoded in blocks of this many rows, as ``StreamedPose`` encodes a pose video: a batched
#: forward pass may round differently for another batch composition.
ENCODE_BLOCK = 8


def loop_index(k: int, n: int, mode: str = DEFAULT_LOOP) -> int:
    """Track row shown at output frame ``k`` when ``n`` rows must last longer than ``n`` frames."""
    if n < 1:
        raise ValueError(f"need at least one row, got {n}")
    if mode == "hold":
        return min(k, n - 1)
    if mode == "repeat":
        return k % n
    if mode != "pingpong":
        raise ValueError(f"unknown loop mode {mode!r}; choose one of {', '.join(LOOP_MODES)}")
    from pcavs.infer.posesource import pingpong_index  # here: pcavs.infer imports this package

    return pingpong_index(k, n)


def _crops(track: PoseTrack, size: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(row, crop)`` for every row, sorted by (source, frame, row): each source video is decoded once."""
    from pcavs.face import warp_to_input
    from pcavs.media import read_video_frames

    n = len(track)
    order = np.lexsort((np.arange(n), track.frame, track.source))
    sources = list(track.meta["sources"])
    mirror = bool(track.meta.get("mirror", False))
    for s, name in enumerate(sources):
        rows = [int(r) for r in order if track.source[r] == s]
        if not rows:
            continue
        path = Path(str(name))
        if not path.is_file():
            raise TrackFileError(f"the track's source video {path} is not found, and the track holds no pose codes "
                                 "for this model; put the video back at that path, or pass the video as --pose")
        j = 0
        frames = read_video_frames(path, fps=int(round(track.fps)))
        try:
            for i, img in enumerate(frames):
                while j < len(rows) and track.frame[rows[j]] == i:
                    crop = warp_to_input(img, track.align[rows[j]], size)
                    yield rows[j], np.ascontiguousarray(crop[:, ::-1]) if mirror else crop
                    j += 1
                if j == len(rows):
                    break
        finally:
            frames.close()
        if j < len(rows):
            raise TrackFileError(f"{path}: has fewer frames than the track refers to (frame {track.frame[rows[j]]}); "
                                 "is it the video the track was extracted from?")


def track_codes(track: PoseTrack, encode: Callable[[np.ndarray], torch.Tensor], size: int) -> np.ndarray:
    """(T, pose_dim) float32 codes of every row: crops at ``size``, encoded in blocks of ``ENCODE_BLOCK``."""
    out: np.ndarray | None = None
    rows: list[int] = []
    batch: list[np.ndarray] = []

    def flush() -> None:
        nonlocal out
        codes = encode(np.stack(batch)).detach().cpu().float().numpy()
        if out is None:
            out = np.zeros((len(track), codes.shape[1]), np.float32)
        out[rows] = codes
        rows.clear()
        batch.clear()

    for row, crop in _crops(track, size):
        rows.append(row)
        batch.append(crop)
        if len(batch) == ENCODE_BLOCK:
            flush()
    if batch:
        flush()
    assert out is not None
    return out


def apply_code_edits(codes: np.ndarray, meta: dict, still: np.ndarray | None = None) -> np.ndarray:
    """The code-space edits recorded in a track's ``meta``: ``amplitude`` scales every row's code around
    the mean code; ``start_from_photo`` shifts all rows so that row 0 equals ``still`` (the photo's code)."""
    out = np.asarray(codes, np.float32).copy()
    amp = meta.get("amplitude")
    if amp is not None and float(amp) != 1.0:
        mean = out.mean(0, keepdims=True)
        out = mean + float(amp) * (out - mean)
    if meta.get("start_from_photo"):
        if still is None:
            raise ValueError("start_from_photo needs the photo's own pose code")
        out = out - out[:1] + np.asarray(still, np.float32).reshape(1, -1)
    return out


class TrackCodes:
    """The pose codes of a track's rows for consecutive output ranges, looped past the end by ``loop``."""

    def __init__(self, codes: np.ndarray, loop: str = DEFAULT_LOOP) -> None:
        if loop not in LOOP_MODES:
            raise ValueError(f"unknown loop mode {loop!r}; choose one of {', '.join(LOOP_MODES)}")
        self._codes = torch.from_numpy(np.asarray(codes, np.float32))
        self.loop = loop
        self.source_frames = len(codes)

    def codes(self, start: int, stop: int) -> torch.Tensor:
        n = self.source_frames
        return self._codes[[loop_index(k, n, self.loop) for k in range(start, stop)]]

    def close(self) -> None:
        pass
