"""Does training resume exactly after it is killed? Per stage and way of dying: an uninterrupted
``pcavs train`` run against one that is stopped and then restarted with the same command; prints the
max |diff| of the exported weights (0.0 = equal to the bit).

    python benchmarks/resume_matrix.py WORKDIR [--stages joint sync identity landmarks]
                                       [--modes sigterm sigkill sigkill-in-write]

Ways of dying: ``sigterm`` (the trainer saves its state and exits), ``sigkill`` at a step between two
checkpoints, and ``sigkill-in-write`` while a checkpoint is being written (the write is held open with
``PCAVS_CHECKPOINT_PAUSE_S`` and the process is killed once the temporary file exists): the tiny presets
on synthetic shards (size 32), 30 steps, a checkpoint every 10 steps, one process on the CPU. Under
torchrun (2 CPU ranks, gloo; compared with an uninterrupted torchrun run): ``torchrun-kill-rank`` SIGKILLs
rank 1 between checkpoints (torchrun then stops rank 0 and exits non-zero, as a lost node does), and
``torchrun-sigterm`` sends SIGTERM to torchrun (a preempted job), which passes it to both ranks, and
``torchrun-sigterm-rank`` sends it to rank 1 alone (all ranks must still stop after the same step).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

MODES = ("sigterm", "sigkill", "sigkill-in-write", "torchrun-kill-rank", "torchrun-sigterm", "torchrun-sigterm-rank")
STAGES = ("joint", "sync", "identity", "landmarks")
STEPS, EVERY, KILL_AT = 30, 10, 15


def make_data(root: Path) -> Path:
    from pcavs.data.synthetic import write_synthetic_dataset

    data = root / "data"
    if not (data / "dataset.json").exists():
        write_synthetic_dataset(data, num_clips=8, frames=20, size=32)
    return data


def command(stage: str, data: Path, out: Path, steps: int = STEPS, ranks: int = 1) -> list[str]:
    launch = [sys.executable, "-m", "pcavs", "train"]
    if ranks > 1:  # torchrun on free ports, gloo on the CPU
        launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks),
                  "-m", "pcavs.train"]  # fmt: skip
    return [*launch, "--preset", f"tiny-{stage}", "--data", str(data), "--out", str(out), "--quiet",
            f"steps={steps}", f"checkpoint_every={EVERY}", "log_every=1", "device=cpu"]


def ranks_of(mode: str) -> int:
    return 2 if mode.startswith("torchrun") else 1


def _rank_pid(agent: int, rank: int) -> int | None:
    """The pid of torchrun's worker ``rank`` (a child of the agent whose environment says RANK=rank)."""
    for child in Path(f"/proc/{agent}/task/{agent}/children").read_text().split():
        try:
            env = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in env:
            return int(child)
    return None


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


def _logged_step(out: Path) -> int:
    log = out / "log.jsonl"
    if not log.exists():
        return -1
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines() if line.strip().endswith("}")]
    return max(steps, default=-1)


def interrupted_run(stage: str, data: Path, out: Path, mode: str, kill_at: int = KILL_AT, timeout: float = 300) -> None:
    """Start the CLI, stop it the ``mode`` way around step ``kill_at``, then rerun the same command."""
    env = _env(PCAVS_CHECKPOINT_PAUSE_S="30") if mode == "sigkill-in-write" else _env()
    cmd = command(stage, data, out, ranks=ranks_of(mode))
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.monotonic()
    try:
        while p.poll() is None and time.monotonic() - t0 < timeout:
            if mode == "sigkill-in-write":
                if any(out.glob(".state*.tmp")) and _logged_step(out) >= EVERY:
                    time.sleep(0.5)  # the temporary file is being written or held: kill inside the write
                    p.send_signal(signal.SIGKILL)
                    break
            elif _logged_step(out) >= kill_at:
                if mode in ("torchrun-kill-rank", "torchrun-sigterm-rank"):
                    pid = _rank_pid(p.pid, 1)
                    if pid is None:
                        raise RuntimeError("torchrun's rank 1 was not found")
                    os.kill(pid, signal.SIGKILL if mode == "torchrun-kill-rank" else signal.SIGTERM)
                else:
                    p.send_signal(signal.SIGTERM if mode in ("sigterm", "torchrun-sigterm") else signal.SIGKILL)
                break
            time.sleep(0.01)
        p.wait(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
    if _logged_step(out) >= STEPS:
        raise RuntimeError(f"{stage}/{mode}: the run finished before it could be stopped")
    subprocess.run(cmd, env=_env(), check=True, capture_output=True, timeout=timeout)


def max_diff(a: Path, b: Path) -> tuple[int, float]:
    from safetensors.torch import load_file

    wa, wb = load_file(a / "weights" / "model.safetensors"), load_file(b / "weights" / "model.safetensors")
    if set(wa) != set(wb):
        raise RuntimeError("the two runs exported different tensors")
    return len(wa), max((wa[k].double() - wb[k].double()).abs().max().item() for k in wa)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    args = ap.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    data = make_data(args.workdir)
    print(f"{'stage':10} {'mode':18} {'tensors':>8} {'max |diff|':>12}")
    for stage in args.stages:
        for mode in args.modes:
            ranks = ranks_of(mode)
            ref = args.workdir / f"{stage}-uninterrupted-{ranks}"
            if not (ref / "weights").exists():
                subprocess.run(command(stage, data, ref, ranks=ranks), env=_env(), check=True, capture_output=True)
            out = args.workdir / f"{stage}-{mode}"
            interrupted_run(stage, data, out, mode)
            n, d = max_diff(ref, out)
            print(f"{stage:10} {mode:18} {n:>8} {d:>12.3g}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
