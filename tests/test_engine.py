"""pcavs.engine: results in the items' order, setup once per worker process, errors raised, Ray only with --ray."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pcavs.engine import (
    EngineConfig,
    EngineError,
    InProcessEngine,
    Job,
    PoolEngine,
    add_ray_arguments,
    engine_config_from_args,
    make_engine,
)

SETUPS: list[int] = []  # setups run in this process


def _setup(shared: dict) -> dict:
    SETUPS.append(os.getpid())
    return {**shared, "pid": os.getpid(), "setup_id": id(SETUPS) + len(SETUPS)}


def _task(state: dict, item: int) -> tuple[int, int, int]:
    if item < 0:
        raise ValueError(f"negative item {item}")
    if item % 3 == 0:
        import time

        time.sleep(0.3)  # late finishers: the results must still come back in the items' order
    return item * state["scale"], state["pid"], state["setup_id"]


def test_in_process_engine_sets_up_once_and_keeps_order() -> None:
    SETUPS.clear()
    seen = []
    out = InProcessEngine().run(Job(_setup, {"scale": 2}, _task), [5, 3, 1], lambda i, r: seen.append(i))
    assert [r[0] for r in out] == [10, 6, 2] and seen == [0, 1, 2]
    assert SETUPS == [os.getpid()]


def test_pool_engine_gathers_in_order_with_one_setup_per_process() -> None:
    items = list(range(12))
    seen: list[int] = []
    out = PoolEngine(2).run(Job(_setup, {"scale": 3}, _task), items, lambda i, r: seen.append(i))
    assert [r[0] for r in out] == [3 * i for i in items]
    assert sorted(seen) == items
    pids = {r[1] for r in out}
    assert 1 <= len(pids) <= 2 and os.getpid() not in pids
    # one setup per worker process: every result of a process carries that process's one state
    assert all(len({r[2] for r in out if r[1] == pid}) == 1 for pid in pids)
    with pytest.raises(ValueError, match="negative item -1"):  # a task's error stops the run, with its own type
        PoolEngine(1).run(Job(_setup, {"scale": 1}, _task), [1, -1, 2])


def test_engine_config_checks_and_choice() -> None:
    assert isinstance(make_engine(EngineConfig()), InProcessEngine)
    assert isinstance(make_engine(EngineConfig(workers=3)), PoolEngine)
    with pytest.raises(EngineError, match="--ray-cpus must be > 0"):
        EngineConfig(cpus=0)
    with pytest.raises(EngineError, match="workers must be 1 or more"):
        EngineConfig(workers=0)
    parser = argparse.ArgumentParser()
    add_ray_arguments(parser)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(["--ray", "HEAD:6379", "--ray-cpus", "4", "--ray-gpus", "0.5", "--device", "cuda"])
    assert engine_config_from_args(args, workers=3) == EngineConfig(workers=3, ray="HEAD:6379", cpus=4, gpus=0.5)
    with pytest.raises(EngineError, match="--device cuda under --ray needs GPUs per task"):
        engine_config_from_args(parser.parse_args(["--ray", "auto", "--device", "cuda"]))


def test_ray_is_imported_only_with_the_option(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"identity": "p.png", "audio": "a.wav"}) + "\n")
    code = (
        "import sys\n"
        "from pcavs.cli import build_parser, main\n"
        "build_parser()  # imports every command module: batch, preprocess, benchmark\n"
        "from pcavs.engine import EngineConfig, make_engine\n"
        "make_engine(EngineConfig(workers=2))\n"
        "print('ray' in sys.modules, file=sys.stderr)\n"
        "sys.modules['ray'] = None  # as if Ray were not installed\n"
        f"sys.exit(main(['batch', {str(manifest)!r}, '-o', {str(tmp_path / 'out')!r}, '--ray', 'auto']))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    no_ray = "error: --ray needs Ray: pip install 'pcavs[ray]' (or pip install ray)"
    assert r.stderr.strip().splitlines() == ["False", no_ray]  # not imported before; then one line, exit 2
