"""Pose codes for every output frame: from a streamed pose video, the photo itself, or zero.

A pose video is never held in memory: frames are decoded, tracked and aligned as the generator asks
for them, batch by batch, and only the resulting pose codes (``pose_dim`` floats per source frame,
48 bytes officially) are kept. That is what makes looping cheap: when the video is shorter than the
audio it plays back and forth (0, 1, .., n-1, n-2, .., 1, 0, 1, ..) like the official demo, and the
return trips reuse the stored codes instead of decoding the file again. A video longer than the
audio is simply not read past the frames that are needed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

import numpy as np
import torch

from pcavs.face import FaceAnalyzer, FaceNotFoundError, clip_crops, track_clip

__all__ = ["FrameSource", "PoseCodes", "ConstantPose", "StreamedPose", "pingpong_index", "pingpong_indices",
           "tracked_crops"]


def pingpong_index(k: int, n: int) -> int:
    """Source frame shown at output frame ``k`` when ``n`` source frames loop back and forth."""
    if n < 1:
        raise ValueError(f"need at least one source frame, got {n}")
    if k < 0:
        raise ValueError(f"frame index must be >= 0, got {k}")
    if n == 1:
        return 0
    period = 2 * (n - 1)  # the end frames are not repeated: ... n-2, n-1, n-2 ...
    m = k % period
    return m if m < n else period - m


def pingpong_indices(start: int, stop: int, n: int) -> list[int]:
    """:func:`pingpong_index` for output frames ``start .. stop-1``."""
    return [pingpong_index(k, n) for k in range(start, stop)]


class PoseCodes(Protocol):
    """Anything that hands out pose codes for consecutive output-frame ranges."""

    def codes(self, start: int, stop: int) -> torch.Tensor: ...

    def close(self) -> None: ...


class ConstantPose:
    """The same pose code for every frame (``still``: the photo's own pose; ``frontal``: zeros)."""

    def __init__(self, code: torch.Tensor) -> None:
        self.code = code.reshape(1, -1)
        self.source_frames = 1

    def codes(self, start: int, stop: int) -> torch.Tensor:
        return self.code.expand(stop - start, -1)

    def close(self) -> None:
        pass


class StreamedPose:
    """Pose codes from a stream of aligned crops, encoded lazily in the batches the caller asks for.

    ``crops`` yields ``size x size x 3`` uint8 network inputs in source order; ``encode`` maps a batch
    (B, size, size, 3) to pose codes (B, pose_dim). Calls must ask for consecutive ranges from 0
    (as the generation loop does); the stream is read up to the end of the ``block`` of source frames
    holding the last frame requested. Crops are encoded in those fixed blocks (source frames 0..7,
    8..15, ...), not in the caller's batches: a batched forward pass may round differently for another
    batch composition, and a code must not depend on the batch size (nor differ on the way back).
    """

    def __init__(
        self, crops: Iterator[np.ndarray], encode: Callable[[np.ndarray], torch.Tensor], name: str = "pose video",
        block: int = 8,
    ) -> None:
        self._crops = crops
        self._encode = encode
        self._block = block
        self._codes: list[torch.Tensor] = []  # one (pose_dim,) row per source frame read so far
        self._total: int | None = None  # number of source frames, known once the stream ends
        self.name = name

    @property
    def source_frames(self) -> int:
        """Source frames read so far (all of them once the stream has ended)."""
        return len(self._codes)

    @property
    def exhausted(self) -> bool:
        return self._total is not None

    def _read_until(self, count: int) -> None:
        while self._total is None and len(self._codes) < count:
            batch: list[np.ndarray] = []
            while len(batch) < self._block:  # always a whole block from a block boundary
                crop = next(self._crops, None)
                if crop is None:
                    self._total = len(self._codes) + len(batch)
                    break
                batch.append(crop)
            if batch:
                self._codes.extend(self._encode(np.stack(batch)).detach().cpu().unbind(0))
        if self._total == 0:
            raise FaceNotFoundError(f"{self.name}: has no frames to take the head pose from; use another video")

    def codes(self, start: int, stop: int) -> torch.Tensor:
        """Pose codes for output frames ``start .. stop-1`` (looping back and forth past the end)."""
        self._read_until(stop)
        n = self._total
        if n is None:  # still inside the first pass: output frame k is source frame k
            index = list(range(start, stop))
        else:
            index = pingpong_indices(start, stop, n)
        return torch.stack([self._codes[i] for i in index])

    def close(self) -> None:
        """Stop reading (closes the decoder when the crops come from a generator)."""
        close = getattr(self._crops, "close", None)
        if close is not None:
            close()


#: Frames of a pose source: a callable that opens a fresh frame iterator (a video file, decoded once per
#: pass) or frames held in memory (a sequence or an (N, H, W, 3) array).
FrameSource = Callable[[], Iterable[np.ndarray]] | Sequence[np.ndarray] | np.ndarray


def _open(frames: FrameSource) -> Iterable[np.ndarray]:
    return frames() if callable(frames) else frames


def tracked_crops(
    frames: FrameSource,
    size: int,
    *,
    analyzer: FaceAnalyzer | None = None,
    name: str = "pose video",
    face_index: int = 0,
    max_gap: int = 12,
    landmarks: Sequence[np.ndarray] | None = None,
    limit: int | None = None,
) -> Iterator[np.ndarray]:
    """Aligned ``size`` crops of the tracked face in the first ``limit`` frames, cropped the official way.

    :mod:`pcavs.face.clip`: one similarity per shot from the shot-averaged eyes and mouth, the mouth
    pinned per frame, so the driver's roll, zoom, turn and nod reach the pose encoder. The frames are
    read twice (landmarks, then crops), lazily: nothing happens before the first crop is asked for.
    Short face-less gaps are interpolated; a gap of more than ``max_gap`` frames raises
    :class:`FaceLostError` with the frame numbers and ``name``. ``landmarks`` (one (68, 2) array per
    frame) replace detection; frames past its end count as lost.
    """
    track = track_clip(_open(frames), analyzer, max_gap=max_gap, face_index=face_index, landmarks=landmarks,
                       limit=limit, name=name)
    yield from clip_crops(_open(frames), track.frame_matrices(), size)
