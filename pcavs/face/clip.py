"""The one crop policy for every moving face (pose videos, ``--pose-mode self``, training clips, SynthTalk):
the official clip procedure, applied shot by shot.

The released model was trained on crops made this way (``OFFICIAL-FACTS.md``, "Cropping"): one
similarity per clip, fitted to the clip-averaged eye and mouth points, plus a per-frame translation that
pins the mouth to the template, smoothed 0.2/0.8. What the crop therefore **keeps**: the head's roll,
zoom, turn (yaw) and nod (pitch) relative to the clip's mean, which is what the pose encoder reads. What
it **pins**: the mouth position (every frame's mouth lands near (112, 120) of the 224 frame). A video
with several shots gets one similarity per shot (cuts are found by :class:`FaceTracker`).

Two passes keep memory bounded for long videos: :func:`track_clip` runs detection and landmarks over the
frames and keeps only landmarks (about 1 KB a frame); :func:`clip_crops` then warps a second pass over
the same frames with the matrices of :func:`ClipTrack.frame_matrices`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from .align import clip_frame_matrices, compose, crop_matrix, warp_to_input
from .detect import FaceAnalyzer, FaceNotFoundError
from .track import FaceLostError, FaceTracker

__all__ = ["ClipTrack", "clip_crops", "track_clip"]


@dataclass
class ClipTrack:
    """Per-frame landmarks of one face through a video, with shots and gap flags (source pixels)."""

    landmarks: np.ndarray  #: (T, 68, 2) float64
    shots: np.ndarray  #: (T,) int: shot index of each frame, 0 .. num_shots-1
    filled: np.ndarray  #: (T,) bool: landmarks interpolated over a face-less gap (or held at an end)
    scores: np.ndarray  #: (T,) float: detector confidence (NaN where the frame had no detection)

    def __len__(self) -> int:
        return len(self.landmarks)

    @property
    def num_shots(self) -> int:
        return int(self.shots.max()) + 1 if len(self.shots) else 0

    def frame_matrices(self) -> np.ndarray:
        """(T, 2, 3): each frame -> the 224 alignment frame, the official procedure per shot."""
        out = np.zeros((len(self), 2, 3))
        for shot in range(self.num_shots):
            idx = np.flatnonzero(self.shots == shot)
            if idx.size:
                out[idx] = np.stack(clip_frame_matrices(self.landmarks[idx]))
        return out

    def matrices(self, size: int) -> np.ndarray:
        """(T, 2, 3): each frame -> the ``size`` x ``size`` network input."""
        crop = crop_matrix(size)
        return np.stack([compose(crop, m) for m in self.frame_matrices()]) if len(self) else np.zeros((0, 2, 3))


def track_clip(
    frames: Iterable[Any],
    analyzer: FaceAnalyzer | None = None,
    *,
    max_gap: int = 12,
    face_index: int = 0,
    landmarks: Sequence[np.ndarray] | None = None,
    limit: int | None = None,
    name: str = "video",
) -> ClipTrack:
    """The landmark pass: one face tracked through ``frames`` (at most ``limit`` of them).

    ``landmarks`` (one (68, 2) array per frame) replace detection; frames past its end count as lost.
    Short face-less gaps (<= ``max_gap`` frames) are interpolated; a longer one raises
    :class:`FaceLostError` naming ``name`` and the frames, no face at all :class:`FaceNotFoundError`.
    Only landmarks are kept, so memory does not grow with the frame size.
    """
    tracker = FaceTracker(analyzer, window=1, max_gap=max_gap, face_index=face_index, keep_frames=False)
    lms: list[np.ndarray] = []
    shots: list[int] = []
    filled: list[bool] = []
    scores: list[float] = []

    def take(done: list[Any]) -> None:
        for tf in done:
            lms.append(tf.landmarks)
            shots.append(tf.shot)
            filled.append(tf.interpolated)
            scores.append(float(tf.box.score) if tf.box is not None else float("nan"))

    # a progress bar on long work (>= 10 s of video at 25 fps), on a terminal only (disable=None)
    bar = tqdm(total=limit, desc=f"tracking {name}", unit="frame", file=sys.stderr, leave=False, dynamic_ncols=True,
               disable=None if landmarks is None and limit is not None and limit >= 250 else True)
    try:
        for i, frame in enumerate(frames):
            if limit is not None and i >= limit:
                break
            if landmarks is None:
                take(tracker.push(frame))
            else:
                take(tracker.push_landmarks(landmarks[i] if i < len(landmarks) else None, frame))
            bar.update(1)
        take(tracker.flush())
    except FaceLostError as exc:
        raise FaceLostError(f"{name}: {exc}", never_seen=exc.never_seen) from None
    except FaceNotFoundError as exc:
        raise FaceNotFoundError(f"{name}: {exc}") from None
    finally:
        bar.close()
        close = getattr(frames, "close", None)  # a video decoder: release the file now, not at GC
        if close is not None:
            close()
    if not lms:
        raise FaceNotFoundError(f"{name}: has no frames to take the head pose from; use another video")
    shot_ids = np.asarray(shots, dtype=np.int64)
    # FaceTracker counts cuts from 0 but a clip may start with filled frames of shot 0: renumber densely
    _, dense = np.unique(shot_ids, return_inverse=True)
    return ClipTrack(np.stack(lms).astype(np.float64), dense.astype(np.int64), np.asarray(filled, dtype=bool),
                     np.asarray(scores, dtype=np.float64))


def clip_crops(frames: Iterable[Any], frame_matrices: np.ndarray, size: int, *,
               border: str = "replicate") -> Iterator[np.ndarray]:
    """The cropping pass: ``size`` x ``size`` x 3 uint8 crops of ``frames`` (one per matrix, then stops)."""
    n = len(frame_matrices)
    try:
        for i, frame in enumerate(frames):
            if i >= n:
                break
            yield warp_to_input(frame, frame_matrices[i], size, border)
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()
