"""``--ray``: batch and preprocess on a local two-node Ray cluster, a worker killed mid-run (``make test-ray``).

The cluster is a head node plus one more node process, 1 CPU each, started by this module and shut
down in teardown whatever happens. Every output must be present once and byte-identical to the
local pool's.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow

from test_batch import check_bad_rows  # noqa: E402 - the manifest of bad rows, checked on every engine

from pcavs.media import read_video_frames  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        c.add_node(num_cpus=1)
        c.wait_for_nodes()
        yield c
    finally:
        c.shutdown()


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four tiny SynthTalk clips (SRC/<id>/<video>/<clip>.mp4 + exact landmarks), their first frames as photos
    and a batch manifest that mixes them: photo k, the speech of clip k+1, the head motion of clip 0."""
    from PIL import Image

    root = tmp_path_factory.mktemp("synthtalk")
    src = root / "src"
    _pcavs("synth", str(src), "--identities", "4", "--clips", "1", "--seconds", "1.4", "--size", "96")
    clips = sorted(src.glob("*/*/*.mp4"))
    assert len(clips) == 4
    for k, clip in enumerate(clips):
        Image.fromarray(next(read_video_frames(clip))).save(root / f"photo{k}.png")
    rows = [{"identity": f"photo{k}.png", "audio": str(clips[(k + 1) % 4].relative_to(root)),
             "pose": str(clips[0].relative_to(root)), "output": f"video{k}.mp4", "seed": k} for k in range(4)]
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def _pcavs(*args: str, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "pcavs", *args], capture_output=True, text=True, timeout=900, **kw)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def _files(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (relative names)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _descendants(pid: int) -> dict[int, str]:
    """{pid: command line} of the processes below ``pid`` (the cluster's raylets and their workers)."""
    table = {}
    for line in subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True).stdout.splitlines():
        p, pp, args = line.strip().split(None, 2) + [""] * (3 - len(line.strip().split(None, 2)))
        table[int(p)] = (int(pp), args)
    out, frontier = {}, {pid}
    while frontier:
        children = {p for p, (pp, _) in table.items() if pp in frontier and p not in out}
        out.update({p: table[p][1] for p in children})
        frontier = children
    return out


def _run_and_kill_a_worker(cmd: list[str], task_name: str, ready: callable,
                           cwd: Path | None = None) -> tuple[subprocess.CompletedProcess, int]:
    """Run ``pcavs ...`` against the cluster; once ``ready()``, SIGKILL one worker process running a task."""
    proc = subprocess.Popen([sys.executable, "-m", "pcavs", *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=cwd)
    killed = 0
    try:
        deadline = time.monotonic() + 600
        while not killed and proc.poll() is None and time.monotonic() < deadline:
            busy = [p for p, args in _descendants(os.getpid()).items() if args.startswith(f"ray::{task_name}")]
            if busy and ready():
                os.kill(busy[0], signal.SIGKILL)  # a worker of our own cluster, in the middle of a task
                killed = busy[0]
            time.sleep(0.2)
        out, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), killed


def test_batch_on_ray_survives_a_killed_worker(cluster, synth: Path, tmp_path: Path) -> None:
    local, remote = tmp_path / "local", tmp_path / "ray"
    _pcavs("batch", str(synth / "manifest.jsonl"), "-o", str(local), "--workers", "2", "--quiet")
    # kill a worker once the first video is written: the others are then being rendered. The paths are
    # relative to the command's folder: the workers see them the same way
    r, killed = _run_and_kill_a_worker(
        ["batch", str(synth / "manifest.jsonl"), "-o", "ray", "--ray", cluster.address, "--quiet"],
        "pcavs-batch", lambda: any(remote.glob("video*.mp4")), cwd=tmp_path)
    assert killed, "no Ray worker was seen running a batch task"
    assert r.returncode == 0, r.stdout + r.stderr
    assert "4 done, 0 skipped (already there), 0 failed" in r.stdout
    records = [json.loads(line) for line in (remote / "results.jsonl").read_text().splitlines()]
    assert sorted(rec["row"] for rec in records) == [0, 1, 2, 3]  # one record a row: the retry is not counted twice
    ours, theirs = _files(local), _files(remote)
    del ours["results.jsonl"], theirs["results.jsonl"]  # timings differ
    assert sorted(theirs) == [f"video{k}.mp4" for k in range(4)]  # no .partial left, nothing extra
    assert theirs == ours  # byte-identical to the local pool's videos


def test_preprocess_on_ray_survives_a_killed_worker(cluster, synth: Path, tmp_path: Path) -> None:
    local, remote = tmp_path / "local", tmp_path / "ray"
    args = ["--size", "64", "--clips-per-shard", "1", "--min-frames", "20", "--quiet"]
    _pcavs("preprocess", str(synth / "src"), str(local), "--workers", "2", *args)
    r, killed = _run_and_kill_a_worker(["preprocess", str(synth / "src"), str(remote), "--ray", cluster.address, *args],
                                       "pcavs-preprocess", lambda: True)
    assert killed, "no Ray worker was seen running a preprocess task"
    assert r.returncode == 0, r.stdout + r.stderr
    assert "4/4 clips" in r.stdout
    ours, theirs = _files(local), _files(remote)
    assert sorted(theirs) == ["dataset.json", *(f"shards/shard-{i:06d}.{e}" for i in range(4) for e in ("json", "tar")),
                              "skipped.jsonl"]
    assert theirs == ours


def test_bad_rows_on_ray(cluster, tmp_path: Path) -> None:
    check_bad_rows(tmp_path, ["--ray", cluster.address])  # the same checks as in this process and the pool


def test_benchmark_on_ray_scores_as_in_process(cluster, synth: Path, tmp_path: Path) -> None:
    """The per-video evaluation (``pcavs benchmark``): the same scores and generated videos on Ray."""
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "mp4").symlink_to(synth / "src")  # SynthTalk is laid out as VoxCeleb2
    (tmp_path / "list.txt").write_text("".join(f"{p.relative_to(synth / 'src').with_suffix('')}\n"
                                               for p in sorted((synth / "src").glob("*/*/*.mp4"))[:2]))
    weights = Path(__file__).parents[1] / "pcavs" / "assets" / "weights" / "synthtalk-small"
    reports = {}
    for name, extra in (("here", []), ("ray", ["--ray", cluster.address])):
        r = subprocess.run([sys.executable, "-m", "pcavs", "benchmark", "--dataset", "vox2", "--root",
                            str(tmp_path / "root"), "--list", str(tmp_path / "list.txt"), "--weights", str(weights),
                            "-o", str(tmp_path / name), "--device", "cpu", "--embedding-stride", "5", *extra],
                           capture_output=True, text=True, timeout=900)
        assert r.returncode in (0, 1), r.stderr  # 1: a video failed (recorded), as in this process
        text = (tmp_path / name / "results.json").read_text().replace(str(tmp_path / name), "OUT")
        reports[name] = {k: v for k, v in json.loads(text).items() if k != "elapsed_s"}
    assert reports["ray"] == reports["here"]
    assert reports["here"]["summary"]["counts"]["ssim"] >= 1
    assert _files(tmp_path / "ray" / "generated") == _files(tmp_path / "here" / "generated")
