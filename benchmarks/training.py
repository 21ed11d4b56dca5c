"""Training throughput (images/s) of a stage preset on random batches, data loading excluded.

    python benchmarks/training.py --preset official-joint [--steps 3] [key=value ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator

import torch

from pcavs.config import preset
from pcavs.train.config import train_preset
from pcavs.train.loop import Trainer


def random_batches(cfg, classes: int = 4) -> Iterator[tuple[int, int, dict[str, torch.Tensor]]]:
    s = preset(cfg.model_preset, cfg.model_overrides).image_size
    b, k, m = cfg.batch_size, cfg.data.clip_len, cfg.data.shift_negatives
    g = torch.Generator().manual_seed(0)
    index = 0
    while True:
        frames = torch.rand(b, k, 3, s, s, generator=g) * 2 - 1
        yield 0, index, {
            "frames": frames,
            "augmented": frames.flip(-1),
            "reference": torch.rand(b, 3, s, s, generator=g) * 2 - 1,
            "mel": torch.rand(b, k, 1, 80, 20, generator=g),
            "mel_shifted": torch.rand(b, k, m, 1, 80, 20, generator=g),
            "label": torch.randint(0, classes, (b,), generator=g),
        }
        index += 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", required=True)
    ap.add_argument("--steps", type=int, default=3, help="timed steps (after one warm-up step)")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args(argv)
    cfg = train_preset(args.preset, ["out_dir=/tmp/pcavs-train-bench", "checkpoint_every=0", *args.overrides])
    trainer = Trainer(cfg, lambda pos: random_batches(cfg))
    batches = random_batches(cfg)
    trainer.step(next(batches)[2])
    t0 = time.perf_counter()
    for _ in range(args.steps):
        trainer.step(next(batches)[2])
    dt = (time.perf_counter() - t0) / args.steps
    images = cfg.batch_size * cfg.data.clip_len
    print(f"{args.preset} ({cfg.precision}, batch {cfg.batch_size}, device {trainer.info.device}): "
          f"{dt:.2f} s/step, {images / dt:.2f} images/s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
