"""The "Live" tab of ``pcavs ui``: the browser's microphone drives the lips, its webcam (optionally) the head.

Transport: WebRTC through aiortc (``pip install 'pcavs[live]'``). Signalling rides on Gradio events: the
Start button's browser-side function opens an ``RTCPeerConnection`` with the microphone (and camera),
waits for its ICE candidates and hands the offer to :meth:`LiveSession.answer` on the server, whose answer
goes back the same way. No extra HTTP route, no hand-made transport.

One clock for sound and picture. Media time ``t`` is the microphone's own timeline (samples received);
``W0`` is the wall time its first sample arrived. The server sends the sound of media time ``t`` and
the frame shown at ``t`` both at wall time ``W0 + delay + t``, so the browser, which aligns the two
tracks by their RTCP sender reports, plays them together. ``delay`` covers the mel window's 120 ms
lookahead, the chunking and the model's time; a frame not ready by its send time is held (the previous
picture again), so the stream never drifts. The page shows the delay, the engine's latency (audio in to
frame out), the frame rate made and the share held.

The heavy work (mel, model, camera face tracking) runs in one worker thread per session, fed through a
queue by the asyncio tasks that receive the tracks, so the server's event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from .live_page import LIVE_JS_ANSWER, LIVE_JS_START, LIVE_JS_STOP, add_live_tab
from .live_tracks import AUDIO_FRAME, OUT_RATE, out_audio_track, out_video_track

log = logging.getLogger("pcavs.ui.live")

# the page's names too (pcavs.ui.app lays the tab out from here)
__all__ = ["AUDIO_FRAME", "LIVE_JS_ANSWER", "LIVE_JS_START", "LIVE_JS_STOP", "OUT_RATE", "LiveManager", "LiveSession",
           "add_live_tab", "pipeline_factory", "webrtc_available"]

DEFAULT_DELAY = 0.3  # s: 120 ms lookahead + 20 ms chunks + model time + margin (built-in model)


def webrtc_available() -> bool:
    """Whether aiortc is installed (the Live tab says how to install it otherwise)."""
    try:
        import aiortc  # noqa: F401
    except ImportError:
        return False
    return True


StreamFactory = Callable[[Any, Any], Any]  # (identity photo path or None, pose source or None) -> TalkingFaceStream


class LiveSession:
    """One browser's live connection: incoming tracks -> stream (worker thread) -> outgoing tracks."""

    def __init__(self, stream: Any, fps: int = 25, delay: float = DEFAULT_DELAY, camera_every: int = 10) -> None:
        self.stream, self.fps, self.delay = stream, fps, delay
        self.camera_every = camera_every  # track every n-th camera frame (face detection is the slow part)
        self.w0: float | None = None  # wall time of media time 0
        self._in = queue.Queue()  # ("audio", samples, rate, arrival) | ("pose", image, media time) | ("stop",)
        self._frames: dict[int, np.ndarray] = {}  # index -> image, made by the worker
        self._made = 0
        self._lock = threading.Lock()
        self._sound: list[np.ndarray] = []  # received mono 48 kHz float, from sample _sound0 on
        self._sound0 = 0
        self._received = 0  # samples received (48 kHz)
        self.sent_frames = 0
        self.sent_held = 0
        self.pose_frames = 0
        self.late_video: deque[float] = deque(maxlen=500)  # how late each send woke, s (the event loop's lag)
        self.late_audio: deque[float] = deque(maxlen=500)
        self.error: str | None = None
        self.pc: Any = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._worker = threading.Thread(target=self._work, name="pcavs-live", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------------------ worker
    def _work(self) -> None:
        try:
            while True:
                item = self._in.get()
                items = [item]
                while True:  # everything waiting, so a slow model holds frames instead of falling behind
                    try:
                        items.append(self._in.get_nowait())
                    except queue.Empty:
                        break
                for it in items:
                    if it[0] == "stop":
                        return
                    if it[0] == "audio":
                        self.stream.push_audio(it[1], sample_rate=it[2], at=it[3])
                    elif it[0] == "pose" and self.stream.push_pose_frame(it[1], it[2]):
                        self.pose_frames += 1
                for frame in self.stream.pull():
                    if not frame.held:
                        with self._lock:
                            self._frames[frame.index] = frame.image
                            self._made = max(self._made, frame.index)
        except Exception as exc:  # noqa: BLE001 - shown on the page, logged with its traceback
            log.exception("live session failed")
            self.error = f"{type(exc).__name__}: {exc}"

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
        self._in.put(("audio", x, rate, now))

    def on_video(self, frame: Any, index: int) -> None:
        """An incoming camera frame: every ``camera_every``-th one drives the head from its time on."""
        if self.w0 is None or index % self.camera_every:
            return
        self._in.put(("pose", frame.to_ndarray(format="rgb24"), time.monotonic() - self.w0))

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

        n = 0
        try:
            while True:
                frame = await track.recv()
                if track.kind == "audio":
                    self.on_audio(frame)
                else:
                    self.on_video(frame, n)
                n += 1
        except MediaStreamError:
            pass

    async def close(self) -> None:
        self._in.put(("stop",))
        for task in self._tasks:
            task.cancel()
        if self.pc is not None:
            await self.pc.close()
        self.stream.close()

    def status(self) -> str:
        """Markdown: delay, engine latency, frame rate, held share."""
        if self.error:
            return f"**Live stopped:** {self.error}"
        st = self.stream.stats
        if not st.generated:
            return "Waiting for the microphone…" if self.w0 is None else "Starting…"
        held = self.sent_held / self.sent_frames if self.sent_frames else 0.0
        return (f"**Live**: picture and sound {self.delay * 1000:.0f} ms behind the microphone; engine latency "
                f"(audio in → frame out) median {st.latency_ms(50):.0f} ms, p95 {st.latency_ms(95):.0f} ms "
                f"(algorithmic {st.lookahead_ms:.0f} ms); {st.fps:.1f} frames/s made, {100 * held:.0f} % held; "
                f"{self.pose_frames} camera poses; sends late by median {1000 * _median(self.late_video):.0f} ms "
                f"(picture), {1000 * _median(self.late_audio):.0f} ms (sound)")


def _median(x: Any) -> float:
    return float(np.median(np.asarray(x))) if len(x) else 0.0


class LiveManager:
    """The live sessions of one app, one per browser session; ``factory`` opens a stream."""

    def __init__(self, factory: StreamFactory, delay: float = DEFAULT_DELAY) -> None:
        self.factory, self.delay = factory, delay
        self.sessions: dict[str, LiveSession] = {}

    async def start(self, key: str, offer_json: str, photo: str | None, pose: str | None,
                    camera: bool = False) -> str:
        await self.stop(key)
        offer = json.loads(offer_json)
        stream = await asyncio.to_thread(self.factory, photo, pose)
        if camera:  # the face tracker's models load now, not on the first camera frame of the live stream
            await asyncio.to_thread(stream.warm_pose_encoder)
        session = LiveSession(stream, delay=self.delay)
        self.sessions[key] = session
        return json.dumps(await session.answer(offer))

    async def stop(self, key: str) -> None:
        session = self.sessions.pop(key, None)
        if session is not None:
            await session.close()

    def status(self, key: str) -> str:
        session = self.sessions.get(key)
        return session.status() if session is not None else ""


def pipeline_factory(backend: Any, delay: float = DEFAULT_DELAY) -> StreamFactory:
    """Streams on the UI's model: the photo (default: the demo identity), the pose from a track/video or
    the photo; a frame that cannot be ready by its send time is dropped (held)."""

    def open_stream(photo: str | None, pose: str | None) -> Any:
        from pcavs.infer.pipeline import GenerationOptions
        from pcavs.infer.stream import TalkingFaceStream
        from pcavs.infer.stream_pacing import Pacing

        pipe = backend.pipeline()
        landmarks = None
        if not photo:
            from .app import DEFAULT_EXAMPLES_DIR

            photo = str(DEFAULT_EXAMPLES_DIR / "identity.png")
            landmarks = np.asarray(json.loads((DEFAULT_EXAMPLES_DIR / "landmarks.json").read_text())["identity"])
        return TalkingFaceStream.open(pipe, photo, pose or None, None, identity_landmarks=landmarks,
                                      options=GenerationOptions(batch_size=1),
                                      pacing=Pacing(max(delay - 0.18, 0.02)))

    return open_stream
