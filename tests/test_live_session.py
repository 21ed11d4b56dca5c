"""The Live tab's send clock (pcavs.ui.live.LiveSession), without a browser: a moment's sound and its picture
leave at the same instant, the sound is the microphone's, a missing frame is held."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction

import av
import numpy as np
import torch

from pcavs.infer.posesource import ConstantPose
from pcavs.infer.stream import TalkingFaceStream
from pcavs.ui.live import AUDIO_FRAME, OUT_RATE, LiveSession


def _index_render(windows: torch.Tensor, pose: torch.Tensor, start: int) -> torch.Tensor:
    # frame i's picture is the grey level i (in [-1, 1] units), so the test can tell which frame was sent
    idx = torch.arange(start, start + windows.shape[0], dtype=torch.float32)
    return (idx / 127.5 - 1).view(-1, 1, 1, 1).expand(-1, 3, 4, 4).contiguous()


def _mic_frame(k: int, rng: np.random.Generator) -> tuple[av.AudioFrame, np.ndarray]:
    pcm = (rng.standard_normal(AUDIO_FRAME) * 3000).astype("<i2")
    frame = av.AudioFrame.from_ndarray(pcm[None], format="s16", layout="mono")
    frame.sample_rate = OUT_RATE
    frame.pts = k * AUDIO_FRAME
    frame.time_base = Fraction(1, OUT_RATE)
    return frame, pcm.astype(np.float32) / 32768


def test_sound_and_picture_of_a_moment_leave_together() -> None:
    stream = TalkingFaceStream(_index_render, ConstantPose(torch.zeros(12)), batch_size=1)
    session = LiveSession(stream, delay=0.25)
    rng = np.random.default_rng(0)
    sent = []
    for k in range(50):  # one second of microphone, delivered at once
        frame, pcm = _mic_frame(k, rng)
        sent.append(pcm)
        session.on_audio(frame)
    mic = np.concatenate(sent)

    async def play() -> tuple[list, list]:
        async def video() -> list:
            out = []
            for i in range(12):
                img = await session.video_frame(i)
                out.append((time.monotonic(), None if img is None else int(img[0, 0, 0])))
            return out

        async def audio() -> list:
            out = []
            for k in range(24):
                x = await session.audio_chunk(k)
                out.append((time.monotonic(), x))
            return out

        return await asyncio.gather(video(), audio())

    frames, chunks = asyncio.run(play())
    asyncio.run(session.close())
    w0 = session.w0
    assert w0 is not None
    for i, (t, _) in enumerate(frames):  # frame i leaves at w0 + delay + i/25 ...
        assert abs(t - (w0 + 0.25 + i / 25)) < 0.03
        assert abs(t - chunks[2 * i][0]) < 0.03  # ... with the sound of the same moment (20 ms chunks)
    assert [v for _, v in frames] == list(range(12))  # each slot's own picture (the model had time)
    for k, (_, x) in enumerate(chunks):  # the microphone's own sound, sample for sample
        np.testing.assert_allclose(x, mic[k * AUDIO_FRAME : (k + 1) * AUDIO_FRAME], atol=1e-6)
    assert session.sent_frames == 12 and "frames/s made" in session.status()
