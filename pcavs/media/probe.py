"""ffprobe-style summaries of written media files."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .common import _open_input


@dataclass(frozen=True)
class StreamSummary:
    index: int
    type: str
    codec: str
    duration: float | None
    frames: int | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    pix_fmt: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    start_time: float | None = None


@dataclass(frozen=True)
class MediaSummary:
    path: str
    format: str
    duration: float | None
    streams: list[StreamSummary] = field(default_factory=list)

    def stream(self, kind: str) -> StreamSummary | None:
        """First stream of ``kind`` ("video" or "audio"), or None."""
        return next((s for s in self.streams if s.type == kind), None)

    def __str__(self) -> str:
        dur = f"{self.duration:.3f} s" if self.duration is not None else "?"
        lines = [f"{self.path}: {self.format}, {dur}"]
        for s in self.streams:
            if s.type == "video":
                lines.append(
                    f"  #{s.index} video {s.codec} {s.width}x{s.height} {s.pix_fmt} "
                    f"{s.fps or 0:.3f} fps, {s.frames} frames"
                )
            elif s.type == "audio":
                lines.append(f"  #{s.index} audio {s.codec} {s.sample_rate} Hz, {s.channels} ch")
            else:
                lines.append(f"  #{s.index} {s.type} {s.codec}")
        return "\n".join(lines)


def probe_output(path: str | os.PathLike[str]) -> MediaSummary:
    """ffprobe-style summary of a media file: container, duration and each stream."""
    p, container = _open_input(path)
    with container:
        streams: list[StreamSummary] = []
        counts: dict[int, int] = {}
        need_count = [s for s in container.streams if s.type == "video" and not s.frames]
        if need_count:  # some containers do not store a frame count: count packets (no decoding)
            for packet in container.demux(*need_count):
                if packet.size:
                    counts[packet.stream.index] = counts.get(packet.stream.index, 0) + 1
        for s in container.streams:
            tb = s.time_base
            dur = float(s.duration * tb) if s.duration is not None and tb else None
            start = float(s.start_time * tb) if s.start_time is not None and tb else None
            cc = s.codec_context
            if s.type == "video":
                rate = s.average_rate or s.guessed_rate
                streams.append(
                    StreamSummary(
                        s.index,
                        "video",
                        cc.name,
                        dur,
                        frames=s.frames or counts.get(s.index, 0),
                        fps=float(rate) if rate else None,
                        width=cc.width,
                        height=cc.height,
                        pix_fmt=cc.pix_fmt,
                        start_time=start,
                    )
                )
            elif s.type == "audio":
                streams.append(
                    StreamSummary(
                        s.index,
                        "audio",
                        cc.name,
                        dur,
                        frames=s.frames or None,
                        sample_rate=cc.sample_rate,
                        channels=cc.channels,
                        start_time=start,
                    )
                )
            else:
                streams.append(StreamSummary(s.index, s.type, cc.name if cc else "?", dur, start_time=start))
        duration = container.duration / 1e6 if container.duration is not None else None
        return MediaSummary(str(p), container.format.name, duration, streams)
