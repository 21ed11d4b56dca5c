"""``pcavs train`` / ``python -m pcavs.train`` / ``torchrun --nproc_per_node N -m pcavs.train``.

    pcavs train --preset small-joint --data DATASET [key=value ...]

The preset names a stage (``*-landmarks``, ``*-sync``, ``*-identity``, ``*-joint``); overrides reach any field of
:class:`~pcavs.train.config.TrainConfig`, e.g. ``batch_size=16 loss.vgg=0 init_from=runs/x/weights``.
A run resumes by itself when ``out_dir`` already holds a training state.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pcavs.config import ConfigError


def add_arguments(p: argparse.ArgumentParser) -> None:
    from pcavs.train.config import TRAIN_PRESETS

    p.add_argument("--preset", required=True, choices=sorted(TRAIN_PRESETS), help="stage and model preset")
    p.add_argument("--data", default=None, help="preprocessed dataset folder (dataset.json); sets data.root")
    p.add_argument("--out", default=None, help="run folder; sets out_dir")
    p.add_argument("--init-from", default=None, help="weights of the previous stage; sets init_from")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")


def run(args: argparse.Namespace) -> int:
    from pcavs.train.config import train_preset
    from pcavs.train.data import batch_source
    from pcavs.train.distributed import init_distributed, shutdown
    from pcavs.train.loop import Trainer

    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.root={args.data}")
    if args.out:
        overrides.append(f"out_dir={args.out}")
    if args.init_from:
        overrides.append(f"init_from={args.init_from}")
    cfg = train_preset(args.preset, overrides)
    if not cfg.data.root:
        raise ConfigError("no training data: pass --data DATASET (a folder made by `pcavs preprocess`)")
    info = init_distributed(cfg.device)
    try:
        trainer = Trainer(cfg, batch_source(cfg, info), info)
        pos = trainer.run(progress=not args.quiet)
        if info.is_main:
            print(f"{cfg.stage}: step {pos.step}/{cfg.steps}; run folder {cfg.out_dir}")
    finally:
        shutdown(info)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pcavs train", description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
