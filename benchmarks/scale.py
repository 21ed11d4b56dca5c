"""Scale-out throughput: ``pcavs batch`` videos/min (local pool, Ray) and ``pcavs preprocess`` frames/s per core.

    python benchmarks/scale.py [--videos 8] [--workers 2] [--no-ray] [--json out.json]

Inputs are SynthTalk clips rendered into a temporary folder (``pcavs synth``):

- batch: ``--videos`` rows (the demo photo and head motion, the speech of a 2 s SynthTalk clip, one
  seed a row; the built-in 64 px model, CPU), run by ``--workers`` local processes, then by Ray tasks (a local Ray
  instance with the same number of CPUs, or the cluster ``--ray ADDRESS`` names). Wall time of the whole
  call (model load, worker start-up, all rows); the two sets of videos are compared by sha256.
- preprocess: 224 px clips (VoxCeleb2's frame size) at ``--size 224`` with landmarks *detected*
  (dlib HOG, as for real data; SynthTalk's exact landmarks are not used), in this process on one core
  (frames/s per core), then on the pool and on Ray.

Figures depend on the machine and on what else runs on it: the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one torch thread a worker: the pool and Ray tasks use 1 too

from pcavs.data.clips import PreprocessConfig  # noqa: E402
from pcavs.data.preprocess import preprocess  # noqa: E402
from pcavs.engine import EngineConfig  # noqa: E402
from pcavs.infer.batch import run_batch  # noqa: E402
from pcavs.infer.demo import DEMO_INPUTS, DEMO_WEIGHTS  # noqa: E402
from pcavs.synth.dataset import write_dataset  # noqa: E402


def _digests(folder: Path, pattern: str) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.glob(pattern)) if p.is_file()}


def _manifest(root: Path, videos: int) -> Path:
    """Rows: the demo photo and head motion, the speech of SynthTalk clip k (2 s), seed k."""
    src = root / "batch-src"
    write_dataset(src, videos, 1, seconds=2.0, size=96, seed=1, progress=False)
    clips = sorted(src.glob("*/*/*.mp4"))
    rows = [{"identity": str(DEMO_INPUTS / "identity.png"), "audio": str(clip), "pose": str(DEMO_INPUTS / "pose.mp4"),
             "output": f"v{k}.mp4", "seed": k} for k, clip in enumerate(clips)]
    path = root / "manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def bench_batch(root: Path, videos: int, engines: dict[str, EngineConfig]) -> list[dict]:
    manifest = _manifest(root, videos)
    rows, digests = [], {}
    for name, cfg in engines.items():
        out = root / f"batch-{name}"
        t0 = time.perf_counter()
        s = run_batch(manifest, out, DEMO_WEIGHTS, progress=False, engine=cfg)
        wall = time.perf_counter() - t0
        digests[name] = _digests(out, "*.mp4")
        rows.append({"engine": name, "videos": s.done, "failed": s.failed, "frames": s.frames, "seconds": wall,
                     "videos_per_min": 60 * s.done / wall, "frames_per_s": s.frames / wall})
        print(f"batch {name}: {s.text()}; wall {wall:.1f} s", flush=True)
        for line in (out / "results.jsonl").read_text().splitlines():
            if '"failed"' in line:
                print("  ", line)
    first = next(iter(digests.values()))
    for r in rows:
        r["identical_to_" + next(iter(digests))] = digests[r["engine"]] == first
    return rows


def bench_preprocess(root: Path, clips: int, engines: dict[str, EngineConfig]) -> list[dict]:
    src = root / "pre-src"
    write_dataset(src, clips, 1, seconds=2.0, size=224, seed=2, progress=False)
    rows, digests = [], {}
    runs = {"1 core (this process)": (1, None), **{k: (c.workers, c) for k, c in engines.items()}}
    for name, (workers, engine) in runs.items():
        dst = root / f"pre-{len(rows)}"
        cfg = PreprocessConfig(size=224, workers=workers, clips_per_shard=1, min_frames=20, landmarks="detect")
        t0, cpu0 = time.perf_counter(), time.process_time()
        ds = preprocess(src, dst, cfg, progress=False, engine=engine)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        digests[name] = _digests(dst, "**/*")
        cores = 1 if engine is None and workers == 1 else (workers if engine is None or not engine.ray else None)
        frames = ds["counts"]["frames"]
        row = {"engine": name, "clips": ds["counts"]["clips"], "frames": frames, "seconds": wall,
               "frames_per_s": frames / wall}
        if cores:
            row["frames_per_s_per_core"] = frames / wall / cores
        if engine is None and workers == 1:  # all the work in this process: CPU time is what a free core needs
            row["frames_per_cpu_second"] = frames / cpu
        rows.append(row)
        print(f"preprocess {name}: {frames} frames in {wall:.1f} s = {frames / wall:.1f} frames/s"
              + (f" ({row['frames_per_cpu_second']:.1f} per CPU second)" if "frames_per_cpu_second" in row else ""),
              flush=True)
    first = next(iter(digests.values()))
    for r in rows:
        r["identical_to_1_core"] = digests[r["engine"]] == first
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--videos", type=int, default=8, help="batch rows (default: 8)")
    p.add_argument("--clips", type=int, default=4, help="preprocess clips, 2 s at 224 px (default: 4)")
    p.add_argument("--workers", type=int, default=2, help="local pool processes; Ray gets as many CPUs")
    p.add_argument("--ray", default="auto", help="Ray address (default auto: a local instance)")
    p.add_argument("--no-ray", action="store_true", help="local pool only")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args()
    engines = {f"local pool, {args.workers} processes": EngineConfig(workers=args.workers)}
    if not args.no_ray:
        if args.ray == "auto":
            import ray  # a local instance with exactly the pool's CPUs, so the two compare

            ray.init(num_cpus=args.workers, log_to_driver=False, configure_logging=False)
        engines[f"Ray tasks ({args.ray}), 1 CPU each"] = EngineConfig(ray=args.ray)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="pcavs-scale-") as tmp:
        root = Path(tmp)
        result = {"cpus": os.cpu_count(), "load_before": load,
                  "batch": bench_batch(root, args.videos, engines),
                  "preprocess": bench_preprocess(root, args.clips, engines), "load_after": os.getloadavg()}
    print(f"\nmachine: {os.cpu_count()} CPUs; load average {load[0]:.2f} before, {result['load_after'][0]:.2f} after")
    print("\n| batch (2 s videos, 64 px model) | videos | wall s | videos/min | frames/s | same bytes |")
    print("|---|---|---|---|---|---|")
    same = next(k for k in result["batch"][0] if k.startswith("identical_to_"))
    for r in result["batch"]:
        print(f"| {r['engine']} | {r['videos']} | {r['seconds']:.1f} | {r['videos_per_min']:.1f} | "
              f"{r['frames_per_s']:.1f} | {'yes' if r[same] else 'NO'} |")
    print("\n| preprocess (224 px, HOG landmarks) | clips | frames | wall s | frames/s | frames/s per core "
          "| same bytes |")
    print("|---|---|---|---|---|---|---|")
    for r in result["preprocess"]:
        per_core = f"{r['frames_per_s_per_core']:.1f}" if "frames_per_s_per_core" in r else "-"
        print(f"| {r['engine']} | {r['clips']} | {r['frames']} | {r['seconds']:.1f} | {r['frames_per_s']:.1f} | "
              f"{per_core} | {'yes' if r['identical_to_1_core'] else 'NO'} |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    if not args.no_ray and args.ray == "auto":
        import ray

        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
