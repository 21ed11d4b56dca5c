"""Videos read at a constant frame rate (sample-and-hold on exact timestamps), and probed."""

from __future__ import annotations

import math
import os
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np

from .common import MediaError, _open_input


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`read_video_frames` will produce for a file (sizes are after rotation)."""

    path: str
    width: int
    height: int
    rotation: int  # degrees counter-clockwise applied to the stored picture for display
    duration: float  # seconds from the first frame to the end of the last one
    fps: float  # output frame rate
    num_frames: int  # frames read_video_frames yields at ``fps``
    source_frames: int
    source_fps: float | None  # average, None if unknown
    codec: str
    has_audio: bool
    audio_sample_rate: int | None
    timing_note: str | None = None  # set when the timestamps were unusable and the frames read in order


class MediaWarning(UserWarning):
    """A readable file read in a way the user should know about (e.g. broken timestamps)."""


# Above this average rate the timestamps cannot be a recording's (high-speed phone video is 240-960 fps):
# such a file (e.g. 90 frames stamped within 0.03 s) would otherwise collapse into one or two output
# frames, an almost still video, without a word.
MAX_PLAUSIBLE_FPS = 1000


def _timing_problem(p: Path, pts: list[int], tb: Fraction, fps: Fraction) -> str | None:
    """A sentence on why ``pts`` (sorted) cannot be the frames' times, or None when they are plausible."""
    if len(pts) < 2:
        return None
    span = (pts[-1] - pts[0]) * tb
    rate = (len(pts) - 1) / span if span > 0 else math.inf
    if rate <= MAX_PLAUSIBLE_FPS:
        return None
    rate_text = "all the same" if span == 0 else f"{float(rate):.0f} fps"
    return (f"{p}: broken timestamps: they span {float(span):.3f} s for {len(pts)} frames ({rate_text}); read "
            f"as {float(fps):g} fps by frame order ({len(pts) / float(fps):.2f} s). If that is not its real speed, "
            "re-export the video with correct timestamps")


def _scan_pts(p: Path) -> tuple[list[int], Fraction]:
    """Sorted presentation timestamps of the video packets (demuxed only, nothing decoded)."""
    _, container = _open_input(p)
    with container:
        stream = _video_stream(p, container)
        tb = stream.time_base or Fraction(1, 90000)
        try:
            pts = sorted(pk.pts for pk in container.demux(stream) if pk.size and pk.pts is not None)
        except av.error.FFmpegError:
            pts = []  # the decoding pass names the damage
    return pts, tb


def _rotation_k(rotation: float | int | None) -> int:
    # Display matrix rotation is counter-clockwise, as is np.rot90 with positive k.
    if not rotation:
        return 0
    return int(round(float(rotation) / 90.0)) % 4


class _Timeline:
    """Presentation timestamps seen so far; estimates where the last frame ends."""

    def __init__(self) -> None:
        self.gaps: Counter[Fraction] = Counter()  # CFR video has 1-3 distinct gaps: tiny memory
        self.last: Fraction | None = None

    def add(self, t: Fraction) -> None:
        if self.last is not None and t > self.last:
            self.gaps[t - self.last] += 1
        self.last = t if self.last is None else max(self.last, t)

    def end(self, last_duration: Fraction | None, fps: Fraction) -> Fraction:
        # The last frame is shown for one typical (lower-median) frame interval. Container durations
        # are not used when there are gaps: MP4 stores them in decode order, so with B-frames the
        # value attached to the last displayed frame belongs to another frame.
        assert self.last is not None
        if self.gaps:
            total = sum(self.gaps.values())
            seen = 0
            for gap in sorted(self.gaps):
                seen += self.gaps[gap]
                if seen > (total - 1) // 2:
                    return self.last + gap
        if last_duration is not None and last_duration > 0:
            return self.last + last_duration  # single frame: trust the container
        return self.last + 1 / fps


def _frame_count(span: Fraction, fps: Fraction) -> int:
    # Output frame k exists while k / fps < span, i.e. ceil(span * fps) frames.
    return max(0, math.ceil(span * fps))


def _video_stream(p: Path, container: av.container.InputContainer) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise MediaError(f"{p}: has no video stream; pass a video file (.mp4/.mov/.mkv/.webm)")
    return container.streams.video[0]


def _fps_fraction(fps: float) -> Fraction:
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return Fraction(fps).limit_denominator(1001)


def probe_video(path: str | os.PathLike[str], fps: float = 25) -> VideoInfo:
    """Describe a video; packets are scanned for exact timestamps, only the first frame is decoded."""
    p, container = _open_input(path)
    fps_q = _fps_fraction(fps)
    with container:
        stream = _video_stream(p, container)
        tb = stream.time_base or Fraction(1, 90000)
        pts: list[int] = []  # decode order; sorted below (ints: ~30 bytes per frame)
        last_dur: Fraction | None = None
        first_frame: av.VideoFrame | None = None
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if first_frame is None:  # decode just enough to learn size and display rotation
                    first_frame = next(iter(packet.decode()), None)
                if packet.pts is None:
                    continue
                pts.append(packet.pts)
                last_dur = packet.duration * tb if packet.duration else None
            if first_frame is None:  # decoder delay longer than the stream: flush it
                first_frame = next(iter(stream.codec_context.decode(None)), None)
        except av.error.FFmpegError as e:
            raise MediaError(f"{p}: video is truncated or corrupt ({e.strerror or e}); re-export it") from None
        if not pts or first_frame is None:
            raise MediaError(f"{p}: the video stream has no frames; use another file")
        pts.sort()
        timeline = _Timeline()
        for v in pts:
            timeline.add(v * tb)
        span = timeline.end(last_dur, fps_q) - pts[0] * tb
        note = _timing_problem(p, pts, tb, fps_q)
        if note is not None:  # read_video_frames yields the frames in order, one per output frame
            span = len(pts) / fps_q
        rotation = int(round(first_frame.rotation or 0))
        w, h = first_frame.width, first_frame.height
        if _rotation_k(rotation) % 2:
            w, h = h, w
        audio = container.streams.audio[0] if container.streams.audio else None
        avg = stream.average_rate
        return VideoInfo(
            path=str(p),
            width=int(w),
            height=int(h),
            rotation=rotation,
            duration=float(span),
            fps=float(fps_q),
            num_frames=len(pts) if note is not None else _frame_count(span, fps_q),
            source_frames=len(pts),
            source_fps=float(avg) if avg else None,
            codec=stream.codec_context.name,
            has_audio=audio is not None,
            audio_sample_rate=int(audio.rate) if audio is not None else None,
            timing_note=note,
        )


def read_video_frames(path: str | os.PathLike[str], fps: float = 25) -> Iterator[np.ndarray]:
    """Stream the frames of a video as RGB ``uint8`` (H, W, 3), resampled to constant ``fps``.

    Output frame ``k`` (time ``k / fps`` after the first source frame) is the latest source frame
    whose timestamp is ``<= k / fps`` (sample-and-hold, correct for variable frame rate); the last
    source frame lasts one typical frame interval. Display rotation metadata is applied. Only the
    current source frame is held in memory; repeats are yielded as copies, safe to modify in place.

    Timestamps faster than ``MAX_PLAUSIBLE_FPS`` on average are broken: the frames are then yielded in
    order, one per output frame, with a :class:`MediaWarning` saying so (as :func:`probe_video` counts).
    """
    p, container = _open_input(path)
    fps_q = _fps_fraction(fps)
    note = _timing_problem(p, *_scan_pts(p), fps_q)
    if note is not None:
        warnings.warn(note, MediaWarning, stacklevel=2)
    with container:
        stream = _video_stream(p, container)
        stream.thread_type = "AUTO"
        tb = stream.time_base or Fraction(1, 90000)
        avg = stream.average_rate
        nominal = 1 / Fraction(avg) if avg else 1 / fps_q
        k = 0
        t0: Fraction | None = None
        held: av.VideoFrame | None = None
        held_arr: np.ndarray | None = None
        held_t = Fraction(0)
        held_dur: Fraction | None = None
        timeline = _Timeline()

        def emit() -> np.ndarray:
            nonlocal held_arr
            if held_arr is not None:
                return held_arr.copy()
            assert held is not None
            arr = held.to_ndarray(format="rgb24")
            rk = _rotation_k(held.rotation)
            held_arr = np.ascontiguousarray(np.rot90(arr, rk)) if rk else arr
            return held_arr

        try:
            for frame in container.decode(stream):
                if note is not None:  # broken timestamps: by frame order
                    held, held_arr = frame, None
                    yield emit()
                    k += 1
                    continue
                if frame.pts is not None:
                    t = frame.pts * tb
                    if t0 is None:
                        t0 = t
                    t -= t0
                else:  # no timestamp: assume the nominal frame interval
                    t = held_t + nominal if held is not None else Fraction(0)
                    t0 = Fraction(0) if t0 is None else t0
                if held is not None:
                    t = max(t, held_t)  # out-of-order timestamp: the newer frame replaces the held one
                    while Fraction(k) / fps_q < t:
                        yield emit()
                        k += 1
                timeline.add(t)
                held, held_arr, held_t = frame, None, t
                held_dur = frame.duration * tb if frame.duration else None
        except av.error.FFmpegError as e:
            raise MediaError(
                f"{p}: video decoding failed at output frame {k} ({e.strerror or e}); the file is "
                "truncated or corrupt; re-export it"
            ) from None
        if held is None:
            raise MediaError(f"{p}: the video stream has no decodable frames; use another file")
        if note is not None:
            return
        end = timeline.end(held_dur, fps_q)
        while Fraction(k) / fps_q < end:
            yield emit()
            k += 1
