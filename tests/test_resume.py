"""Training resumes exactly after it is killed, tried as users kill it: the CLI in a subprocess, stopped,
then the same command again (benchmarks/resume_matrix.py runs the whole stage x way-of-dying table)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("resume_matrix", Path(__file__).parents[1] / "benchmarks" /
                                               "resume_matrix.py")
rm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rm)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return rm.make_data(tmp_path_factory.mktemp("resume"))


def _check(stage: str, mode: str, data: Path, tmp: Path) -> None:
    import subprocess

    ref, out = tmp / "ref", tmp / "out"
    cmd = rm.command(stage, data, ref, ranks=rm.ranks_of(mode))
    subprocess.run(cmd, env=rm._env(), check=True, capture_output=True, timeout=300)
    rm.interrupted_run(stage, data, out, mode)
    n, diff = rm.max_diff(ref, out)
    assert n > 100 and diff == 0.0
    assert not list(out.glob(".state*.tmp"))  # the half-written checkpoint was cleaned up


def test_sigkill_between_checkpoints_resumes_to_the_bit(data: Path, tmp_path: Path) -> None:
    _check("joint", "sigkill", data, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("mode", rm.MODES)
@pytest.mark.parametrize("stage", ["joint", "sync", "identity", "landmarks"])
def test_every_stage_and_way_of_dying(stage: str, mode: str, data: Path, tmp_path: Path) -> None:
    """One process and torchrun. torchrun-sigterm-rank: before every rank agreed on when to stop, the rank
    that got SIGTERM waited in the checkpoint's barrier while rank 0 trained on, and the job hung."""
    _check(stage, mode, data, tmp_path)


def test_torchrun_rank_killed_resumes_to_the_bit(data: Path, tmp_path: Path) -> None:
    """torchrun, 2 CPU ranks: SIGKILL on rank 1 between checkpoints, the same command again."""
    _check("joint", "torchrun-kill-rank", data, tmp_path)


def test_each_rank_resumes_its_own_rng_streams(tmp_path: Path) -> None:
    """A state saved by 2 ranks gives rank r back rank r's streams; another world size falls back to the
    main process's (torchrun ranks on GPUs draw from different CUDA streams, so rank 0's are not theirs)."""
    import torch
    from torch import nn

    from pcavs.train.state import Position, load_state, rng_state, save_state

    model, opts = nn.Linear(2, 2), {}
    torch.manual_seed(1)
    r0 = rng_state()
    torch.manual_seed(2)
    r1 = rng_state()
    torch.manual_seed(3)
    main = rng_state()
    save_state(tmp_path, model, opts, Position(step=5), {}, rank_rngs=[r0, r1])
    for rank, world, want in ((1, 2, r1), (0, 2, r0), (1, 4, main)):
        torch.manual_seed(99)
        pos, _ = load_state(tmp_path, model, opts, rank=rank, world_size=world)
        assert pos.step == 5 and torch.equal(torch.get_rng_state(), want["torch"])
