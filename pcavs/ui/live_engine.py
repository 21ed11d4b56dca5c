"""The heavy side of a live session: microphone sound and camera frames in, generated frames out.

:func:`run_engine` is the loop: it feeds everything waiting to the :class:`~pcavs.infer.stream.TalkingFaceStream`
(so a slow model holds frames instead of falling behind), pulls what can be made and hands the new pictures
and the figures back. :class:`ThreadEngine` runs it in a thread of this process; :class:`ProcessEngine` in a
child process at a lower priority (nice 10), which is what the UI uses: the server's event loop, which sends
the live sound and picture, then shares neither the GIL nor its share of the CPU with the model. Measured on
the shared 2-core machine (load 4-7.5, built-in model + camera): the event loop waited for a CPU 15-18 % of
the time instead of 25-36 %, 20-22 frames/s made instead of 13-19; sends that left 100-450 ms late still
happened when the machine's other jobs took the cores (the page's lip-sync steering absorbs them).

Items in: ``("audio", samples, rate, arrival time)``, ``("pose", rgb image, media time)``, ``("stop",)``.
Messages out: ``("frame", index, image)``, ``("stats", EngineStats)``, ``("error", message)``.
"""

from __future__ import annotations

import abc
import logging
import math
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("pcavs.ui.live")

__all__ = ["Engine", "EngineStats", "ProcessEngine", "ThreadEngine", "run_engine"]

Sink = Callable[[tuple], None]
StreamFactory = Callable[[Any, Any], Any]  # (identity photo path or None, pose source or None) -> TalkingFaceStream
STATS_EVERY = 0.5  # s between figures sent back
NICE = 10  # the child's priority below the server's: when the CPU is short, frames are held, not sends late


@dataclass
class EngineStats:
    """The stream's figures, as the page shows them."""

    generated: int = 0
    fps: float = 0.0
    latency_p50_ms: float = math.nan
    latency_p95_ms: float = math.nan
    lookahead_ms: float = 0.0
    pose_frames: int = 0

    @classmethod
    def of(cls, stream: Any, pose_frames: int) -> EngineStats:
        st = stream.stats
        return cls(st.generated, st.fps, st.latency_ms(50), st.latency_ms(95), st.lookahead_ms, pose_frames)


def run_engine(stream: Any, get: Callable[[bool], tuple | None], emit: Sink) -> None:
    """Feed ``stream`` the items ``get(block)`` returns (None: nothing waiting) until ``("stop",)``."""
    pose_frames, last_stats = 0, -math.inf
    while True:
        items = [get(True)]
        while (item := get(False)) is not None:  # everything waiting, so a slow model holds frames
            items.append(item)
        for item in items:
            if item is None or item[0] == "stop":
                return
            if item[0] == "audio":
                stream.push_audio(item[1], sample_rate=item[2], at=item[3])
            elif item[0] == "pose" and stream.push_pose_frame(item[1], item[2]):
                pose_frames += 1
        made = [f for f in stream.pull() if not f.held]
        for frame in made:
            emit(("frame", frame.index, frame.image))
        now = time.monotonic()
        if made and now - last_stats >= STATS_EVERY:
            emit(("stats", EngineStats.of(stream, pose_frames)))
            last_stats = now


class Engine(abc.ABC):
    """Where a session's stream runs: :meth:`start` with the session's sink, :meth:`put` items, :meth:`close`."""

    @abc.abstractmethod
    def start(self, sink: Sink) -> None: ...

    @abc.abstractmethod
    def put(self, item: tuple) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...


class ThreadEngine(Engine):
    """The loop in a worker thread of this process, on an open stream."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self._in: queue.Queue[tuple] = queue.Queue()

    def start(self, sink: Sink) -> None:
        def work() -> None:
            try:
                run_engine(self.stream, self._get, sink)
            except Exception as exc:  # noqa: BLE001 - shown on the page, logged with its traceback
                log.exception("live session failed")
                sink(("error", f"{type(exc).__name__}: {exc}"))

        threading.Thread(target=work, name="pcavs-live", daemon=True).start()

    def _get(self, block: bool) -> tuple | None:
        try:
            return self._in.get(block)
        except queue.Empty:
            return None

    def put(self, item: tuple) -> None:
        self._in.put(item)

    def close(self) -> None:
        self._in.put(("stop",))
        self.stream.close()


class ProcessEngine(Engine):
    """The loop in a child process, on the stream ``factory(photo, pose)`` opens there (``factory`` must be
    picklable: a module-level function or an object such as :class:`~pcavs.ui.live.PipelineStreams`).

    The child is spawned at once; :meth:`wait_ready` blocks until the stream is open (the model loaded, and
    the face tracker too when ``camera``) and raises what opening it raised. Items go out through a thread
    of their own, so a busy child never blocks the caller; messages come back through another.
    """

    def __init__(self, factory: StreamFactory, photo: Any, pose: Any, camera: bool = False) -> None:
        import torch

        ctx = multiprocessing.get_context("spawn")  # fork is unsafe in a threaded server
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_child_main, args=(factory, photo, pose, camera,
                                                           engine_threads(torch.get_num_threads()), child),
                                 name="pcavs-live-engine", daemon=True)
        self._proc.start()
        child.close()
        self._out: queue.Queue[tuple] = queue.Queue()
        self._closing = False

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self._proc.is_alive()

    def wait_ready(self) -> None:
        try:
            msg = self._conn.recv()
        except EOFError:
            raise RuntimeError(f"the live engine exited while starting (code {self._proc.exitcode})") from None
        if msg[0] == "error":
            raise msg[1]

    def start(self, sink: Sink) -> None:
        def send() -> None:
            while True:
                item = self._out.get()
                try:
                    self._conn.send(item)
                except OSError:
                    return
                if item[0] == "stop":
                    return

        def receive() -> None:
            while True:
                try:
                    msg = self._conn.recv()
                except (EOFError, OSError):
                    if not self._closing:
                        sink(("error", f"the live engine exited (code {self._proc.exitcode})"))
                    return
                sink(msg)

        threading.Thread(target=send, name="pcavs-live-send", daemon=True).start()
        threading.Thread(target=receive, name="pcavs-live-receive", daemon=True).start()

    def put(self, item: tuple) -> None:
        self._out.put(item)

    def close(self) -> None:
        """Stop the child (blocks up to a few seconds: call it off the event loop)."""
        self._closing = True
        self._out.put(("stop",))
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(1)
        self._conn.close()


def engine_threads(requested: int, cores: int | None = None) -> int:
    """Torch threads of the model's child: at most one per core less one, so the server's sends and the
    browser keep a core. On 2 cores the default (2 threads) made 6 frames/s with 96 % of slots held in
    `make test-live`; 1 thread made 24.6 frames/s, 0 % held."""
    cores = cores or os.cpu_count() or 1
    return max(1, min(requested, cores - 1))


def _child_main(factory: StreamFactory, photo: Any, pose: Any, camera: bool, threads: int, conn: Any) -> None:
    from pcavs.device import set_cpu_threads

    if NICE and hasattr(os, "nice"):
        os.nice(NICE)
    set_cpu_threads(threads)  # numpy's BLAS too: its spinning threads cost 4/5 of the frames (see there)
    try:
        stream = factory(photo, pose)
        if camera:  # the face tracker's models load now, not on the first camera frame
            stream.warm_pose_encoder()
    except Exception as exc:  # noqa: BLE001 - raised again in the parent (wait_ready)
        try:
            conn.send(("error", exc))
        except Exception:  # noqa: BLE001 - not picklable: its text
            conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
        return
    conn.send(("ready",))

    def get(block: bool) -> tuple | None:
        if not block and not conn.poll(0):
            return None
        try:
            return conn.recv()
        except EOFError:  # the parent is gone
            return ("stop",)

    try:
        run_engine(stream, get, conn.send)
    except Exception as exc:  # noqa: BLE001 - shown on the page
        log.exception("live session failed")
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        stream.close()
