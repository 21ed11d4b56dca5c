"""Inference speed of the driven path, beside a 2048^3 fp32 matmul timed in the same run.

    python benchmarks/inference.py [--preset official] [--batch-sizes 1 8 32] [--json out.json]

For each batch size and precision mode: frames/s and GFLOP/s of the driven path (audio encoder +
non-identity encoder + generator per frame; the identity encoder once per video), the fraction of
the matmul rate, peak RSS, and the max abs difference against fp32. FLOPs are counted with
``torch.utils.flop_counter``. With ``--full`` it also times the whole ``generate`` command on a
30 s clip (face detection, media, encoding included).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from pcavs.config import preset
from pcavs.model import PCAVS


def matmul_rate(n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of an n^3 fp32 matmul: the machine's practical ceiling for dense work."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e9


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def driven_step(model: PCAVS, ident, mel: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    content = model.encode_audio(mel)
    return model.generate(ident, model.mouth_style(content), model.encode_pose(pose), noise="const")


def count_flops(model: PCAVS, ident, mel: torch.Tensor, pose: torch.Tensor) -> float:
    with FlopCounterMode(display=False) as counter:
        driven_step(model, ident, mel, pose)
    return counter.get_total_flops() / mel.shape[0]


def bench(model: PCAVS, batch: int, precision: str, seconds: float, device: torch.device) -> dict:
    s = model.cfg.image_size
    g = torch.Generator().manual_seed(0)
    ref = (torch.rand(1, 3, s, s, generator=g) * 2 - 1).to(device)
    mel = torch.rand(batch, 1, 80, 20, generator=g).to(device)
    pose = (torch.rand(batch, 3, s, s, generator=g) * 2 - 1).to(device)
    dtype = {"fp32": None, "bf16": torch.bfloat16}[precision]
    with torch.no_grad():
        ident = model.encode_identity(ref)
        ref_out = driven_step(model, ident, mel, pose).float()
        ctx = torch.autocast(device.type, dtype=dtype) if dtype else torch.autocast(device.type, enabled=False)
        with ctx:
            out = driven_step(model, ident, mel, pose)  # warm-up
            if device.type == "cuda":
                torch.cuda.synchronize()
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds or n < 2:
                out = driven_step(model, ident, mel, pose)
                n += 1
            if device.type == "cuda":
                torch.cuda.synchronize()
            dt = (time.perf_counter() - t0) / (n * batch)
    return {
        "batch": batch,
        "precision": precision,
        "ms_per_frame": dt * 1000,
        "frames_per_s": 1 / dt,
        "max_abs_diff_vs_fp32": float((out.float() - ref_out).abs().max()),
        "peak_rss_mb": peak_rss_mb(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="official")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    ap.add_argument("--seconds", type=float, default=10.0, help="time spent per configuration")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = PCAVS(preset(args.preset)).eval().to(device)
    rate = matmul_rate() if device.type == "cpu" else float("nan")
    s = model.cfg.image_size
    with torch.no_grad():
        ident = model.encode_identity(torch.zeros(1, 3, s, s, device=device))
        zero_mel, zero_img = torch.zeros(1, 1, 80, 20, device=device), torch.zeros(1, 3, s, s, device=device)
        flops = count_flops(model, ident, zero_mel, zero_img)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"matmul 2048^3 fp32: {rate:.1f} GFLOP/s;  driven path: {flops / 1e9:.2f} GFLOP/frame ({args.preset})")
    print(f"{'batch':>5} {'prec':>5} {'ms/frame':>9} {'frames/s':>9} {'GFLOP/s':>8} {'of matmul':>9} "
          f"{'max|diff|':>10} {'RSS MB':>7}")  # fmt: skip
    rows = []
    for precision in args.precisions:
        for batch in args.batch_sizes:
            r = bench(model, batch, precision, args.seconds, device)
            r["gflops"] = flops / 1e9 / (r["ms_per_frame"] / 1000)
            r["fraction_of_matmul"] = r["gflops"] / rate
            rows.append(r)
            print(f"{batch:>5} {precision:>5} {r['ms_per_frame']:>9.1f} {r['frames_per_s']:>9.2f} "
                  f"{r['gflops']:>8.1f} {r['fraction_of_matmul']:>9.0%} {r['max_abs_diff_vs_fp32']:>10.2e} "
                  f"{r['peak_rss_mb']:>7.0f}")  # fmt: skip
            sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps({"matmul_gflops": rate, "flops_per_frame": flops, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
