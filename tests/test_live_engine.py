"""A live session's stream in a child process (pcavs.ui.live_engine.ProcessEngine): frames and figures come
back, the factory's errors are raised in the parent, the child ends with the session."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from pcavs.infer.posesource import ConstantPose
from pcavs.infer.sources import InputError
from pcavs.infer.stream import TalkingFaceStream
from pcavs.ui.live_engine import EngineStats, ProcessEngine, engine_threads

SR = 16000


def _index_render(windows: torch.Tensor, pose: torch.Tensor, start: int) -> torch.Tensor:
    idx = torch.arange(start, start + windows.shape[0], dtype=torch.float32)  # frame i: grey level i
    return (idx / 127.5 - 1).view(-1, 1, 1, 1).expand(-1, 3, 4, 4).contiguous()


def open_index_stream(photo: object, pose: object) -> TalkingFaceStream:  # picklable: the child opens it
    return TalkingFaceStream(_index_render, ConstantPose(torch.zeros(12)), batch_size=1,
                             pose_encoder=lambda image: torch.full((12,), float(image[0, 0, 0])))


def open_nothing(photo: object, pose: object) -> TalkingFaceStream:
    raise InputError(f"no face found in {photo}")


def open_thread_report(photo: object, pose: object) -> TalkingFaceStream:  # says the child's thread counts
    from threadpoolctl import threadpool_info

    blas = sorted({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"})
    raise InputError(f"torch={torch.get_num_threads()} blas={blas}")


def test_frames_come_back_from_the_child_process() -> None:
    engine = ProcessEngine(open_index_stream, None, None, camera=True)
    engine.wait_ready()
    got: list[tuple] = []
    engine.start(got.append)
    engine.put(("pose", np.full((8, 8, 3), 7, np.uint8), 0.0))
    engine.put(("audio", np.zeros(SR, np.float32), SR, time.monotonic()))  # 1 s: frames 0..22 (640 i + 1919 < 16000)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sum(m[0] == "frame" for m in got) < 23:
        time.sleep(0.05)
    engine.close()
    frames = [m for m in got if m[0] == "frame"]
    assert [m[1] for m in frames] == list(range(23))
    assert [int(m[2][0, 0, 0]) for m in frames] == list(range(23))  # each slot's own picture
    stats = [m[1] for m in got if m[0] == "stats"]
    assert stats and isinstance(stats[0], EngineStats) and stats[0].generated > 0 and stats[0].lookahead_ms == 120
    assert stats[-1].pose_frames == 1
    assert not engine.running


def test_the_factory_error_is_raised_in_the_parent() -> None:
    engine = ProcessEngine(open_nothing, "me.jpg", None)
    with pytest.raises(InputError, match="no face found in me.jpg"):
        engine.wait_ready()
    engine.close()


def test_the_child_limits_numpys_blas_threads_as_well_as_torchs() -> None:
    # OpenBLAS's own spinning threads (the stream's mel) took 4/5 of the frames while torch had 1 thread
    engine = ProcessEngine(open_thread_report, None, None)
    with pytest.raises(InputError) as err:
        engine.wait_ready()
    engine.close()
    want = engine_threads(torch.get_num_threads())
    assert str(err.value) == f"torch={want} blas=[{want}]"


def test_the_model_child_leaves_a_core_to_the_server_and_browser():
    assert engine_threads(2, cores=2) == 1  # 2 threads on 2 cores: 6 frames/s; 1 thread: 24.6
    assert engine_threads(1, cores=2) == 1
    assert engine_threads(16, cores=16) == 15
    assert engine_threads(4, cores=16) == 4  # an explicit lower setting is kept
    assert engine_threads(8, cores=1) == 1
