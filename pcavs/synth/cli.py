"""``pcavs synth`` / ``python -m pcavs.synth``: write a SynthTalk dataset."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Add the synth arguments to ``parser`` (or a new one), for reuse as a subcommand."""
    p = parser or argparse.ArgumentParser(prog="pcavs synth", description="Write a SynthTalk dataset "
                                          "(VoxCeleb2 layout, mp4 + per-clip JSON ground truth).")
    p.add_argument("out_dir", help="output directory (created; finished clips are skipped on rerun)")
    p.add_argument("--identities", type=int, default=10, help="number of identities")
    p.add_argument("--clips", type=int, default=4, help="clips per identity")
    p.add_argument("--seconds", type=float, default=4.0, help="clip length in seconds")
    p.add_argument("--size", type=int, default=224, help="frame size in pixels (even)")
    p.add_argument("--seed", type=int, default=0, help="master seed")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns a process exit code."""
    args = build_parser().parse_args(argv)
    from .dataset import write_dataset

    try:
        res = write_dataset(args.out_dir, args.identities, args.clips, args.seconds, args.size, args.seed,
                            args.workers)
    except (RuntimeError, ValueError) as e:
        print(f"pcavs synth: error: {e}", file=sys.stderr)
        return 2
    print(f"synth: wrote {res['written']} clips, skipped {res['skipped']} already complete -> {args.out_dir}")
    return 0
