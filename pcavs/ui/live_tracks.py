"""The two tracks a live session sends back over WebRTC (aiortc): its picture and its sound, each leaving when
:class:`~pcavs.ui.live.LiveSession` says their moment is due."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

__all__ = ["AUDIO_FRAME", "OUT_RATE", "VIDEO_CLOCK", "out_audio_track", "out_video_track"]

OUT_RATE = 48000  # Opus's rate: the sound sent back is the microphone's, delayed
AUDIO_FRAME = 960  # 20 ms at 48 kHz
VIDEO_CLOCK = 90000


def _tracks() -> tuple[type, type]:
    """(picture track class, sound track class), made on first use (aiortc is optional)."""
    from aiortc import MediaStreamTrack

    class OutVideo(MediaStreamTrack):
        kind = "video"

        def __init__(self, session: Any) -> None:
            super().__init__()
            self.session, self.index, self.blank = session, 0, None

        async def recv(self) -> Any:
            import av

            img = await self.session.video_frame(self.index)
            if img is None:
                img = np.zeros((64, 64, 3), np.uint8)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts = self.index * VIDEO_CLOCK // self.session.fps
            frame.time_base = Fraction(1, VIDEO_CLOCK)
            self.index += 1
            return frame

    class OutAudio(MediaStreamTrack):
        kind = "audio"

        def __init__(self, session: Any) -> None:
            super().__init__()
            self.session, self.k = session, 0

        async def recv(self) -> Any:
            import av

            x = await self.session.audio_chunk(self.k)
            pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
            frame = av.AudioFrame.from_ndarray(pcm[None], format="s16", layout="mono")
            frame.sample_rate = OUT_RATE
            frame.pts = self.k * AUDIO_FRAME
            frame.time_base = Fraction(1, OUT_RATE)
            self.k += 1
            return frame

    return OutVideo, OutAudio


def out_video_track(session: Any) -> Any:
    """The picture track of ``session``."""
    return _tracks()[0](session)


def out_audio_track(session: Any) -> Any:
    """The sound track of ``session``."""
    return _tracks()[1](session)
