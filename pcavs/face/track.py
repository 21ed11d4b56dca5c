"""Streaming face tracking for pose videos: per-frame landmarks, gap filling and jitter-free crops.

Per frame the face is re-detected inside a window around the previous box (fast; full-frame detection
only when that fails), and its official alignment is decomposed into (log scale, rotation, face
centre).  Those parameters, not the raw matrices, are smoothed with a centred moving average: averaging
the centre keeps the crop from drifting when rotation varies, and the log scale avoids zoom jitter.
The official authors crop around clip-averaged landmarks for the same reason (see
``official_sequence_matrices`` for that non-streaming variant).

Memory is bounded: only ``window // 2`` frames of lookahead plus at most ``max_gap`` lost frames are
buffered.  Short gaps (<= ``max_gap`` frames) are linearly interpolated (held constant at the clip
ends); a longer gap raises ``FaceLostError`` naming the frames.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .align import (
    ALIGN_FRAME,
    compose,
    crop_matrix,
    frame_matrix,
    invert_affine,
    transform_points,
    warp_to_input,
)
from .detect import Box, FaceAnalyzer, FaceNotFoundError, as_rgb_uint8, default_analyzer, landmark_frame

__all__ = ["FaceLostError", "FaceTracker", "TrackedFrame", "matrix_to_params", "params_to_matrix",
           "track_landmarks"]

_ANCHOR = np.array([ALIGN_FRAME / 2, ALIGN_FRAME / 2])


class FaceLostError(FaceNotFoundError):
    """The face disappeared for more frames than the tracker may interpolate.

    ``never_seen`` is True when no frame before the error had a face.
    """

    def __init__(self, message: str, never_seen: bool = False) -> None:
        super().__init__(message)
        self.never_seen = never_seen


def matrix_to_params(m: np.ndarray) -> np.ndarray:
    """Frame matrix (similarity) -> [log scale, angle (rad), cx, cy]; c is the source point that
    lands on the centre of the 224 frame."""
    a, b = m[0, 0], m[1, 0]
    c = transform_points(invert_affine(m), _ANCHOR[None])[0]
    return np.array([np.log(np.hypot(a, b)), np.arctan2(b, a), c[0], c[1]])


def params_to_matrix(p: np.ndarray) -> np.ndarray:
    """Inverse of ``matrix_to_params``."""
    s, th = np.exp(p[0]), p[1]
    lin = s * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    return np.hstack([lin, (_ANCHOR - lin @ p[2:4])[:, None]])


@dataclass
class TrackedFrame:
    """Tracking result for one frame (coordinates are original-image pixels)."""

    index: int
    landmarks: np.ndarray  #: (68, 2); interpolated when ``interpolated``
    matrix: np.ndarray  #: smoothed composite 2x3, original -> ``size`` network input
    raw_matrix: np.ndarray  #: the same before smoothing
    box: Box | None  #: the detection (None when interpolated or landmarks were pushed)
    interpolated: bool
    frame: np.ndarray | None = field(default=None, repr=False)  #: the frame, if ``keep_frames``
    shot: int = 0  #: shot index: it grows by one at every detected cut


@dataclass
class _Entry:
    index: int
    frame: np.ndarray | None
    box: Box | None = None
    landmarks: np.ndarray | None = None
    params: np.ndarray | None = None
    filled: bool = False  # landmarks/params interpolated over a gap
    segment: int = 0  # smoothing never mixes frames across a cut (segment change)


class FaceTracker:
    """Streaming tracker: ``push`` frames, collect finished ``TrackedFrame`` s, then ``flush``.

    Args:
        analyzer: detector/landmark models (default: the shared one).
        size: network input size the returned matrices map to.
        window: odd length of the centred moving average over alignment parameters (1 = off);
            it is also the lookahead: results lag ``window // 2`` frames behind the input.
        max_gap: longest run of face-less frames that is interpolated.
        face_index: which face to lock onto in the first frame (0 = largest).
        roi_margin: search window around the previous box, in box sizes on each side.
        keep_frames: attach each frame to its result (otherwise only coordinates are buffered).
        cut_px: a per-frame jump of the face centre larger than this (in 224-frame pixels), or of
            more than 25 % in scale or 20 degrees in roll, is treated as a shot cut: smoothing and
            gap interpolation do not cross it.
    """

    def __init__(self, analyzer: FaceAnalyzer | None = None, *, size: int = 224, window: int = 9,
                 max_gap: int = 12, face_index: int = 0, roi_margin: float = 0.75,
                 keep_frames: bool = True, cut_px: float = 40.0) -> None:
        if window < 1 or window % 2 == 0:
            raise ValueError(f"window must be a positive odd number, got {window}")
        self.analyzer = analyzer or default_analyzer()
        self.size = size
        self.half = window // 2
        self.max_gap = max_gap
        self.face_index = face_index
        self.roi_margin = roi_margin
        self.keep_frames = keep_frames
        self.cut_px = cut_px
        self._segment = 0
        self._crop = crop_matrix(size)
        self._count = 0
        self._prev_box: Box | None = None
        self._last: _Entry | None = None  # last detected entry, for interpolation
        self._gap: list[_Entry] = []  # face-less frames waiting for the face to come back
        self._queue: deque[_Entry] = deque()  # known params, waiting for lookahead
        self._hist: deque[tuple[int, np.ndarray]] = deque(maxlen=max(self.half, 1))  # emitted (segment, params)

    # ---------------------------------------------------------------- detection
    # Landmark following: when HOG misses the face near its last place (a roll or turn beyond what it
    # finds), the CNN looks in the window around it (hundredths of a second); once it has confirmed the
    # face, the box is carried over from the last landmarks and the shape predictor fits the face in it
    # (milliseconds), with a CNN check every FOLLOW_CHECK-th frame. A failed check is a lost face: the
    # whole frame is searched (the CNN there costs about 0.5 s per 640x360 frame on 2 cores). Before
    # this, a hard pose video was tracked at 0.5-2 frames/s. Without the CNN (--detector hog) there is
    # no following: nothing could tell a face from a blank frame.
    FOLLOW_CHECK = 8

    def _find(self, img: np.ndarray) -> Box | None:
        prev = self._prev_box
        if prev is None:
            boxes = self.analyzer.detect(img, allow_empty=True)
            return boxes[self.face_index] if len(boxes) > self.face_index else None
        boxes = self.analyzer.detect_near(img, prev, self.roi_margin)
        if boxes:
            self._follow = 0
            return self._same_person(boxes, prev)
        last = self._last
        rel = getattr(self, "_box_rel", None)
        followed = getattr(self, "_follow", 0)
        if (self.analyzer.use_cnn and last is not None and last.landmarks is not None and rel is not None
                and last.index == self._count - 1):
            followed += 1
            if followed == 1 or followed % self.FOLLOW_CHECK == 0:  # the CNN confirms a face is still there
                found = self.analyzer.detect_near(img, prev, self.roi_margin, cnn=True)
                if found:
                    self._follow = followed
                    return self._same_person(found, prev)
            else:
                self._follow = followed
                cx, cy, spread = landmark_frame(last.landmarks)
                dx, dy, bw, bh = (v * spread for v in rel)
                return Box(cx + dx - bw / 2, cy + dy - bh / 2, cx + dx + bw / 2, cy + dy + bh / 2, 0.0, "landmarks")
        self._follow = 0
        boxes = self.analyzer.detect(img, allow_empty=True)  # lost: the whole frame, CNN fallback included
        return self._same_person(boxes, prev) if boxes else None

    def _same_person(self, boxes: list[Box], prev: Box) -> Box:
        """Stay on the same person: best overlap, then nearest centre."""

        def cost(b: Box) -> tuple[float, float]:
            return (-b.iou(prev), float(np.hypot(*np.subtract(b.center, prev.center))))

        return min(boxes, key=cost)

    def _calibrate(self, box: Box | None, landmarks: np.ndarray | None) -> None:
        """Remember where a detector puts its box relative to the landmarks (for landmark following)."""
        if box is None or landmarks is None or box.detector == "landmarks":
            return
        cx, cy, spread = landmark_frame(landmarks)
        if spread > 0:
            bx, by = box.center
            self._box_rel = ((bx - cx) / spread, (by - cy) / spread, box.width / spread, box.height / spread)

    # ---------------------------------------------------------------- streaming
    def push(self, frame: Any) -> list[TrackedFrame]:
        """Process the next frame; returns the results that became final (in order, maybe none)."""
        img = as_rgb_uint8(frame)
        box = self._find(img)
        lm = None if box is None else self.analyzer.landmarks(img, box)
        self._calibrate(box, lm)
        return self.push_landmarks(lm, img, box=box)

    def push_landmarks(self, landmarks: np.ndarray | None, frame: Any = None, *,
                       box: Box | None = None) -> list[TrackedFrame]:
        """Like ``push`` with landmarks found elsewhere (None = no face in this frame)."""
        entry = _Entry(self._count, frame if self.keep_frames else None)
        self._count += 1
        if landmarks is None:
            self._gap.append(entry)
            if len(self._gap) > self.max_gap:
                first = self._gap[0].index
                raise FaceLostError(
                    f"face lost in frames {first}-{entry.index} ({len(self._gap)} consecutive frames, "
                    f"more than max_gap={self.max_gap}); use a pose video where the face stays visible",
                    never_seen=self._last is None,
                )
            return []
        entry.box = box
        entry.landmarks = np.asarray(landmarks, dtype=np.float64)
        fm = frame_matrix(entry.landmarks)
        entry.params = matrix_to_params(fm)
        if self._last is not None:
            # keep the angle continuous so averaging never straddles the +-pi cut
            d = entry.params[1] - self._last.params[1]
            entry.params[1] -= 2 * np.pi * np.round(d / (2 * np.pi))
            if self._is_cut(self._last.params, entry.params):
                self._segment += 1
        entry.segment = self._segment
        if box is not None:
            self._prev_box = box
        self._fill_gap(entry)
        self._queue.append(entry)
        self._last = entry
        return self._drain(final=False)

    def _is_cut(self, a: np.ndarray, b: np.ndarray) -> bool:
        shift = float(np.hypot(*(b[2:4] - a[2:4]))) * np.exp(0.5 * (a[0] + b[0]))  # in 224-frame px
        return shift > self.cut_px or abs(b[0] - a[0]) > np.log(1.25) or abs(b[1] - a[1]) > np.deg2rad(20)

    def _fill_gap(self, nxt: _Entry | None) -> None:
        prev, n = self._last, len(self._gap)
        for k, e in enumerate(self._gap, start=1):
            e.filled = True
            t = k / (n + 1)
            if prev is None or nxt is None or prev.segment != nxt.segment:
                # clip ends / across a cut: hold the nearest detection instead of sweeping the crop
                src = nxt if prev is None or (nxt is not None and t > 0.5) else prev
                e.landmarks, e.params, e.segment = src.landmarks.copy(), src.params.copy(), src.segment
            else:
                e.landmarks = (1 - t) * prev.landmarks + t * nxt.landmarks
                e.params = (1 - t) * prev.params + t * nxt.params
                e.segment = prev.segment
            self._queue.append(e)
        self._gap = []

    def _drain(self, final: bool) -> list[TrackedFrame]:
        out = []
        while self._queue and (final or len(self._queue) > self.half):
            e = self._queue[0]
            # Symmetric window, shrunk at clip ends and cuts: zero lag, and linear motion passes
            # through unchanged.
            k = 0
            while (k < self.half and k < len(self._hist) and k + 1 < len(self._queue)
                   and self._hist[-1 - k][0] == e.segment == self._queue[k + 1].segment):
                k += 1
            window = [self._hist[-1 - i][1] for i in range(k)] + [e.params]
            window += [self._queue[i].params for i in range(1, k + 1)]
            p = np.mean(window, axis=0)
            out.append(TrackedFrame(
                index=e.index,
                landmarks=e.landmarks,
                matrix=compose(self._crop, params_to_matrix(p)),
                raw_matrix=compose(self._crop, params_to_matrix(e.params)),
                box=e.box,
                interpolated=e.filled,
                frame=e.frame,
                shot=e.segment,
            ))
            self._hist.append((e.segment, e.params))
            self._queue.popleft()
        return out

    def flush(self) -> list[TrackedFrame]:
        """End of the stream: emit everything still buffered."""
        if self._gap:
            if self._last is None:
                raise FaceLostError(f"no face found in any of the {self._count} frames; "
                                    "use a pose video with a clearly visible face", never_seen=True)
            self._fill_gap(None)
        return self._drain(final=True)

    def aligned(self, tf: TrackedFrame, *, smoothed: bool = True, border: str = "replicate") -> np.ndarray:
        """The network-input crop of a result's frame (needs ``keep_frames``)."""
        if tf.frame is None:
            raise ValueError("frame not kept; create the tracker with keep_frames=True")
        m = tf.matrix if smoothed else tf.raw_matrix
        return warp_to_input(tf.frame, compose(invert_affine(self._crop), m), self.size, border)


def track_landmarks(frames: Iterable[Any], **kwargs: Any) -> Iterator[TrackedFrame]:
    """Track a face through an iterable of RGB frames, yielding ``TrackedFrame`` s in order.

    Keyword arguments go to ``FaceTracker``.  Only a bounded number of frames is held at a time.
    """
    tracker = FaceTracker(**kwargs)
    for frame in frames:
        yield from tracker.push(frame)
    yield from tracker.flush()
