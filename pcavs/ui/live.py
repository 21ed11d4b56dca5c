"""The "Live" tab of ``pcavs ui``: the browser's microphone drives the lips, its webcam (optionally) the head.

Transport: WebRTC through aiortc (``pip install 'pcavs[live]'``). Signalling rides on Gradio events: the
Start button's browser-side function opens an ``RTCPeerConnection`` with the microphone (and camera),
waits for its ICE candidates and hands the offer to :meth:`LiveSession.answer` on the server, whose answer
goes back the same way. No extra HTTP route, no hand-made transport.

One clock for sound and picture. Media time ``t`` is the microphone's own timeline (samples received);
``W0`` is the wall time its first sample arrived. The server sends the sound of media time ``t`` and
the frame shown at ``t`` both at wall time ``W0 + delay + t``, so the browser, which aligns the two
tracks by their RTCP sender reports, plays them together (and the page closes what gap is left: see
:mod:`pcavs.ui.live_page`). ``delay`` covers the mel window's 120 ms
lookahead, the chunking and the model's time; a frame not ready by its send time is held (the previous
picture again), so the stream never drifts. The page shows the delay, the engine's latency (audio in to
frame out), the frame rate made and the share held.

The heavy work (mel, model, camera face tracking) runs in a child process per session
(:mod:`pcavs.ui.live_engine`), fed by the asyncio tasks that receive the tracks: the server's event loop is
never blocked, and the model never holds the GIL of the process that keeps the send clock.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from .live_engine import Engine, EngineStats, ProcessEngine, StreamFactory, ThreadEngine
from .live_page import LIVE_JS_ANSWER, LIVE_JS_START, LIVE_JS_STOP, add_live_tab
from .live_tracks import AUDIO_FRAME, OUT_RATE, out_audio_track, out_video_track

log = logging.getLogger("pcavs.ui.live")

# the page's names too (pcavs.ui.app lays the tab out from here)
__all__ = ["AUDIO_FRAME", "LIVE_JS_ANSWER", "LIVE_JS_START", "LIVE_JS_STOP", "OUT_RATE", "LiveManager", "LiveSession",
           "PipelineStreams", "add_live_tab", "pipeline_factory", "webrtc_available"]

DEFAULT_DELAY = 0.3  # s: 120 ms lookahead + 20 ms chunks + model time + margin (built-in model)
CAMERA_INTERVAL = 0.4  # s between camera frames tracked (2.5 poses a second)


def webrtc_available() -> bool:
    """Whether aiortc is installed (the Live tab says how to install it otherwise)."""
    try:
        import aiortc  # noqa: F401
    except ImportError:
        return False
    return True


class LiveSession:
    """One browser's live connection: incoming tracks -> engine (a stream in a thread or a child process) ->
    outgoing tracks. ``stream``: an :class:`~pcavs.ui.live_engine.Engine`, or a stream to run in a thread."""

    def __init__(self, stream: Any, fps: int = 25, delay: float = DEFAULT_DELAY,
                 camera_interval: float = CAMERA_INTERVAL) -> None:
        self.engine = stream if isinstance(stream, Engine) else ThreadEngine(stream)
        self.fps, self.delay = fps, delay
        self.camera_interval = camera_interval  # s between tracked camera frames (face detection is the slow part)
        self._last_camera = -math.inf
        self.w0: float | None = None  # wall time of media time 0
        self._frames: dict[int, np.ndarray] = {}  # index -> image, made by the engine
        self.stats = EngineStats()
        self._lock = threading.Lock()
        self._sound: list[np.ndarray] = []  # received mono 48 kHz float, from sample _sound0 on
        self._sound0 = 0
        self._received = 0  # samples received (48 kHz)
        self.sent_frames = 0
        self.sent_held = 0
        self.late_video: deque[float] = deque(maxlen=500)  # how late each send woke, s (the event loop's lag)
        self.late_audio: deque[float] = deque(maxlen=500)
        self.error: str | None = None
        self.pc: Any = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.engine.start(self._on_result)

    def _on_result(self, msg: tuple) -> None:
        """A message from the engine: a frame made, the figures, or an error."""
        if msg[0] == "frame":
            with self._lock:
                self._frames[msg[1]] = msg[2]
        elif msg[0] == "stats":
            self.stats = msg[1]
        elif msg[0] == "error":
            self.error = msg[1]

    # ------------------------------------------------------------------------------ inputs
    def on_audio(self, frame: Any) -> None:
        """An incoming (aiortc) audio frame: to the stream, and kept for sending back."""
        arr = frame.to_ndarray()
        channels = len(frame.layout.channels)
        if arr.dtype == np.int16:
            x = arr.astype(np.float32) / 32768.0
        else:
            x = arr.astype(np.float32)
        x = x.reshape(-1, channels).mean(axis=1) if not frame.format.is_planar else x.mean(axis=0)
        now = time.monotonic()
        rate = int(frame.sample_rate)
        if self.w0 is None:
            self.w0 = now - x.size / rate
        if rate != OUT_RATE:  # browsers send 48 kHz Opus; anything else is resampled for the way back
            x_out = np.interp(np.arange(round(x.size * OUT_RATE / rate)) * rate / OUT_RATE, np.arange(x.size), x)
        else:
            x_out = x
        with self._lock:
            self._sound.append(x_out.astype(np.float32))
            self._received += x_out.size
        self.engine.put(("audio", x, rate, now))

    def on_video(self, frame: Any) -> None:
        """An incoming camera frame: one every ``camera_interval`` seconds drives the head from its time on."""
        now = time.monotonic()
        if self.w0 is None or now - self._last_camera < self.camera_interval:
            return
        self._last_camera = now
        self.engine.put(("pose", frame.to_ndarray(format="rgb24"), now - self.w0))

    # ------------------------------------------------------------------------------ outputs
    async def _wait_until(self, media_t: float) -> float:
        """Sleep until media time ``media_t`` is due to be sent; returns how late we woke (s)."""
        while self.w0 is None:
            await asyncio.sleep(0.01)
        due = self.w0 + self.delay + media_t
        if due > time.monotonic():
            await asyncio.sleep(due - time.monotonic())
        return time.monotonic() - due

    async def video_frame(self, index: int) -> np.ndarray | None:
        """The picture of slot ``index`` at its send time: the frame made for it, else the last one (held)."""
        self.late_video.append(await self._wait_until(index / self.fps))
        with self._lock:
            img = self._frames.get(index)
            if img is None:
                earlier = [k for k in self._frames if k < index]
                img = self._frames[max(earlier)] if earlier else None
                self.sent_held += 1
            for k in [k for k in self._frames if k < index]:  # sent: never needed again (bar the held one)
                if img is not self._frames[k]:
                    del self._frames[k]
            self.sent_frames += 1
        return img

    async def audio_chunk(self, k: int) -> np.ndarray:
        """Samples ``[960 k, 960 (k+1))`` of the received sound (48 kHz), sent when media time ``20 k`` ms
        is due, as the frame shown then (RTCP maps a packet's first sample to its send time)."""
        self.late_audio.append(await self._wait_until(k * AUDIO_FRAME / OUT_RATE))
        a, b = k * AUDIO_FRAME, (k + 1) * AUDIO_FRAME
        out = np.zeros(AUDIO_FRAME, np.float32)
        with self._lock:
            pos = self._sound0
            keep: list[np.ndarray] = []
            for chunk in self._sound:
                lo, hi = max(a, pos), min(b, pos + chunk.size)
                if lo < hi:
                    out[lo - a : hi - a] = chunk[lo - pos : hi - pos]
                if pos + chunk.size > b:
                    keep.append(chunk)
                else:
                    self._sound0 = pos + chunk.size
                pos += chunk.size
            self._sound = keep
        return out

    # ------------------------------------------------------------------------------ WebRTC
    async def answer(self, offer: dict[str, str]) -> dict[str, str]:
        """Accept the browser's offer (microphone, optional camera); the answer sends video and sound back."""
        from aiortc import RTCPeerConnection, RTCSessionDescription

        pc = RTCPeerConnection()
        self.pc = pc

        @pc.on("track")
        def on_track(track: Any) -> None:
            self._tasks.append(asyncio.ensure_future(self._receive(track)))

        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type=offer["type"]))
        pc.addTrack(out_audio_track(self))
        pc.addTrack(out_video_track(self))
        await pc.setLocalDescription(await pc.createAnswer())
        return {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}

    async def _receive(self, track: Any) -> None:
        from aiortc.mediastreams import MediaStreamError

        try:
            while True:
                frame = await track.recv()
                if track.kind == "audio":
                    self.on_audio(frame)
                else:
                    self.on_video(frame)
        except MediaStreamError:
            pass

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.pc is not None:
            await self.pc.close()
        await asyncio.to_thread(self.engine.close)

    def status(self) -> str:
        """Markdown: delay, engine latency, frame rate, held share."""
        if self.error:
            return f"**Live stopped:** {self.error}"
        st = self.stats
        if not st.generated:
            return "Waiting for the microphone…" if self.w0 is None else "Starting…"
        held = self.sent_held / self.sent_frames if self.sent_frames else 0.0
        return (f"**Live**: picture and sound {self.delay * 1000:.0f} ms behind the microphone; engine latency "
                f"(audio in → frame out) median {st.latency_p50_ms:.0f} ms, p95 {st.latency_p95_ms:.0f} ms "
                f"(algorithmic {st.lookahead_ms:.0f} ms); {st.fps:.1f} frames/s made, {100 * held:.0f} % held; "
                f"{st.pose_frames} camera poses; sends late by median {1000 * _median(self.late_video):.0f} ms "
                f"(picture), {1000 * _median(self.late_audio):.0f} ms (sound)")


def _median(x: Any) -> float:
    return float(np.median(np.asarray(x))) if len(x) else 0.0


class LiveManager:
    """The live sessions of one app, one per browser session; ``factory(photo, pose)`` opens a stream.

    ``engine="process"`` (default) opens and runs each session's stream in a child process (``factory``
    must then be picklable; the child loads its own copy of the model, a few seconds per start);
    ``"thread"`` in a thread of this process (any factory, the model shared; the sends may stall behind it).
    """

    def __init__(self, factory: StreamFactory, delay: float = DEFAULT_DELAY, engine: str = "process") -> None:
        if engine not in ("process", "thread"):
            raise ValueError(f"engine must be 'process' or 'thread', got {engine!r}")
        self.factory, self.delay, self.engine = factory, delay, engine
        self.sessions: dict[str, LiveSession] = {}

    async def start(self, key: str, offer_json: str, photo: str | None, pose: str | None,
                    camera: bool = False) -> str:
        await self.stop(key)
        offer = json.loads(offer_json)
        engine: Engine
        if self.engine == "process":
            engine = ProcessEngine(self.factory, photo, pose, camera)
            try:
                await asyncio.to_thread(engine.wait_ready)
            except BaseException:
                await asyncio.to_thread(engine.close)
                raise
        else:
            stream = await asyncio.to_thread(self.factory, photo, pose)
            if camera:  # the face tracker's models load now, not on the first camera frame of the live stream
                await asyncio.to_thread(stream.warm_pose_encoder)
            engine = ThreadEngine(stream)
        session = LiveSession(engine, delay=self.delay)
        self.sessions[key] = session
        return json.dumps(await session.answer(offer))

    async def stop(self, key: str) -> None:
        session = self.sessions.pop(key, None)
        if session is not None:
            await session.close()

    def status(self, key: str) -> str:
        session = self.sessions.get(key)
        return session.status() if session is not None else ""


@dataclass(frozen=True)
class PipelineStreams:
    """Opens streams on the model in ``weights`` (loaded on the first call in each process): the photo
    (default: the demo identity), the pose from a track/video or the photo; a frame that cannot be ready by
    its send time is dropped (held). Picklable, so a session's child process opens its own."""

    weights: str | None
    device: str = "auto"
    delay: float = DEFAULT_DELAY

    def __call__(self, photo: str | None, pose: str | None) -> Any:
        from pcavs.infer.demo import DEMO_INPUTS
        from pcavs.infer.options import GenerationOptions
        from pcavs.infer.stream import TalkingFaceStream
        from pcavs.infer.stream_pacing import Pacing

        pipe = _pipeline(self.weights, self.device)
        landmarks = None
        if not photo:
            photo = str(DEMO_INPUTS / "identity.png")
            landmarks = np.asarray(json.loads((DEMO_INPUTS / "landmarks.json").read_text())["identity"])
        return TalkingFaceStream.open(pipe, photo, pose or None, None, identity_landmarks=landmarks,
                                      options=GenerationOptions(batch_size=1),
                                      pacing=Pacing(max(self.delay - 0.18, 0.02)))


@functools.lru_cache(maxsize=2)
def _pipeline(weights: str | None, device: str) -> Any:
    from pcavs.infer.inputs import check_weights
    from pcavs.infer.pipeline import TalkingFacePipeline
    from pcavs.infer.sources import InputError

    if weights is None:
        raise InputError("no model weights: restart the UI with --weights DIR")
    check_weights(weights)
    return TalkingFacePipeline.from_pretrained(weights, device=device)


def pipeline_factory(backend: Any, delay: float = DEFAULT_DELAY) -> PipelineStreams:
    """Streams on the UI backend's model (its weights and device; each session's process loads its own)."""
    return PipelineStreams(None if backend.weights is None else str(backend.weights), backend.device, delay)
