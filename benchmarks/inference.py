"""Inference speed of the driven path, beside a 2048^3 fp32 matmul timed in the same run.

    python benchmarks/inference.py [--preset official] [--batch-sizes 1 8 32] [--chunk auto|all|N]
                                   [--full 10 180] [--json out.json]

For each batch size and precision mode: frames/s and GFLOP/s of the driven path (audio encoder +
non-identity encoder + generator per frame; the identity encoder once per video), the fraction of
the matmul rate, peak RSS, and the max abs difference against fp32. FLOPs are counted with
``torch.utils.flop_counter``. ``--chunk`` sets how many frames go through the generator per call
(``auto``: the pipeline's choice for the device, one on a CPU; ``all``: the whole batch at once).
``--full S ...`` also runs the whole pipeline (``generate_video`` on the built-in demo photo and pose
video, the demo speech looped to S seconds, H.264 + AAC encoding included), each length in a fresh
process, and reports frames/s, time to the first frame and that process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from pcavs.config import preset
from pcavs.device import set_cpu_threads
from pcavs.model import PCAVS, generator_chunk


def matmul_rate(n: int = 2048, repeats: int = 5, trials: int = 3) -> float:
    """GFLOP/s of an n^3 fp32 matmul (median of ``trials``): the practical ceiling for dense work."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    rates = []
    for _ in range(trials):
        t0 = time.perf_counter()
        for _ in range(repeats):
            a @ b
        rates.append(2 * n**3 * repeats / (time.perf_counter() - t0) / 1e9)
    return sorted(rates)[len(rates) // 2]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def driven_step(model: PCAVS, ident, mel: torch.Tensor, pose: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    content = model.encode_audio(mel)
    return model.generate(ident, model.mouth_style(content), model.encode_pose(pose), noise="const", chunk=chunk)


def count_flops(model: PCAVS, ident, mel: torch.Tensor, pose: torch.Tensor) -> float:
    with FlopCounterMode(display=False) as counter:
        driven_step(model, ident, mel, pose)
    return counter.get_total_flops() / mel.shape[0]


def bench(
    model: PCAVS, batch: int, precision: str, seconds: float, device: torch.device, chunk: int | None = None
) -> dict:
    s = model.cfg.image_size
    g = torch.Generator().manual_seed(0)
    ref = (torch.rand(1, 3, s, s, generator=g) * 2 - 1).to(device)
    mel = torch.rand(batch, 1, 80, 20, generator=g).to(device)
    pose = (torch.rand(batch, 3, s, s, generator=g) * 2 - 1).to(device)
    dtype = {"fp32": None, "bf16": torch.bfloat16}[precision]
    with torch.no_grad():
        ident = model.encode_identity(ref)
        ref_out = driven_step(model, ident, mel, pose).float()  # fp32, the whole batch in one call
        ctx = torch.autocast(device.type, dtype=dtype) if dtype else torch.autocast(device.type, enabled=False)
        with ctx:
            out = driven_step(model, ident, mel, pose, chunk)  # warm-up
            if device.type == "cuda":
                torch.cuda.synchronize()
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds or n < 2:
                out = driven_step(model, ident, mel, pose, chunk)
                n += 1
            if device.type == "cuda":
                torch.cuda.synchronize()
            dt = (time.perf_counter() - t0) / (n * batch)
    return {
        "batch": batch,
        "precision": precision,
        "chunk": chunk,
        "ms_per_frame": dt * 1000,
        "frames_per_s": 1 / dt,
        "max_abs_diff_vs_fp32": float((out.float() - ref_out).abs().max()),
        "peak_rss_mb": peak_rss_mb(),
    }


def _full_run(preset_name: str, seconds: float, batch: int, device: str, out_queue) -> None:
    """One pipeline run in a fresh process, so its peak RSS is its own."""
    from pcavs.infer.demo import DEMO_INPUTS
    from pcavs.infer.pipeline import generate_video
    from pcavs.media import read_audio

    torch.manual_seed(0)
    model = PCAVS(preset(preset_name)).eval()  # random weights: speed does not depend on them
    landmarks = json.loads((DEMO_INPUTS / "landmarks.json").read_text())
    speech = read_audio(DEMO_INPUTS / "speech.wav")
    audio = np.tile(speech, int(np.ceil(seconds * 16000 / speech.size)))[: int(seconds * 16000)]
    rss0 = peak_rss_mb()
    with tempfile.TemporaryDirectory(prefix="pcavs-bench-") as tmp:
        t0 = time.perf_counter()
        result = generate_video(
            DEMO_INPUTS / "identity.png", audio, Path(tmp) / "out.mp4", weights=model,
            pose=DEMO_INPUTS / "pose.mp4", pose_mode="video", device=device, batch_size=batch,
            identity_landmarks=np.asarray(landmarks["identity"]),
            pose_landmarks=[np.asarray(lm) for lm in landmarks["pose"]], progress=False, noise="const",
        )  # fmt: skip
        wall = time.perf_counter() - t0
    out_queue.put({
        "seconds_of_audio": seconds, "frames": result.num_frames, "batch": batch, "wall_s": wall,
        "frames_per_s": result.num_frames / wall, "first_frame_s": result.first_frame_s,
        "peak_rss_mb": peak_rss_mb(), "rss_before_mb": rss0,
    })  # fmt: skip


def full_runs(preset_name: str, lengths: list[float], batch: int, device: str) -> list[dict]:
    ctx = mp.get_context("spawn")
    rows = []
    for seconds in lengths:
        q = ctx.Queue()
        p = ctx.Process(target=_full_run, args=(preset_name, seconds, batch, device, q))
        p.start()
        row = q.get()
        p.join()
        rows.append(row)
        print(f"full pipeline, {seconds:g} s of audio ({row['frames']} frames, batch {batch}): "
              f"{row['frames_per_s']:.2f} frames/s, first frame after {row['first_frame_s']:.2f} s, "
              f"peak RSS {row['peak_rss_mb']:.0f} MB", flush=True)  # fmt: skip
    return rows


def _chunk_arg(text: str) -> str | int:
    if text in ("auto", "all"):
        return text
    return int(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="official")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    ap.add_argument("--seconds", type=float, default=10.0, help="time spent per configuration")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for torch and BLAS (0: their defaults)")
    ap.add_argument("--chunk", type=_chunk_arg, default="auto", help="generator frames per call: auto, all or N")
    ap.add_argument("--full", type=float, nargs="*", default=[], metavar="S",
                    help="also run the whole pipeline on S seconds of audio (each in a fresh process)")
    ap.add_argument("--full-batch", type=int, default=8, help="the pipeline's batch size in --full runs")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        set_cpu_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = PCAVS(preset(args.preset)).eval().to(device)
    chunk = {"auto": generator_chunk(device, model.cfg.image_size), "all": None}.get(args.chunk, args.chunk)
    rate = matmul_rate() if device.type == "cpu" else float("nan")
    s = model.cfg.image_size
    with torch.no_grad():
        ident = model.encode_identity(torch.zeros(1, 3, s, s, device=device))
        zero_mel, zero_img = torch.zeros(1, 1, 80, 20, device=device), torch.zeros(1, 3, s, s, device=device)
        flops = count_flops(model, ident, zero_mel, zero_img)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"matmul 2048^3 fp32: {rate:.1f} GFLOP/s;  driven path: {flops / 1e9:.2f} GFLOP/frame ({args.preset}); "
          f"generator frames per call: {chunk or 'the whole batch'}")  # fmt: skip
    print(f"{'batch':>5} {'prec':>5} {'ms/frame':>9} {'frames/s':>9} {'GFLOP/s':>8} {'matmul':>7} {'of matmul':>9} "
          f"{'max|diff|':>10} {'RSS MB':>7}")  # fmt: skip
    rows = []
    for precision in args.precisions:
        for batch in args.batch_sizes:
            r = bench(model, batch, precision, args.seconds, device, chunk)
            r["gflops"] = flops / 1e9 / (r["ms_per_frame"] / 1000)
            # the reference is re-timed beside every row: on a shared machine it drifts by +-25%
            r["matmul_gflops"] = matmul_rate() if device.type == "cpu" else float("nan")
            r["fraction_of_matmul"] = r["gflops"] / r["matmul_gflops"]
            rows.append(r)
            print(f"{batch:>5} {precision:>5} {r['ms_per_frame']:>9.1f} {r['frames_per_s']:>9.2f} "
                  f"{r['gflops']:>8.1f} {r['matmul_gflops']:>7.1f} {r['fraction_of_matmul']:>9.0%} "
                  f"{r['max_abs_diff_vs_fp32']:>10.2e} {r['peak_rss_mb']:>7.0f}")  # fmt: skip
            sys.stdout.flush()
    full = full_runs(args.preset, args.full, args.full_batch, args.device) if args.full else []
    if args.json:
        report = {"matmul_gflops": rate, "flops_per_frame": flops, "chunk": chunk, "rows": rows, "full": full}
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
