"""``pcavs synth`` / ``python -m pcavs.synth``: write a SynthTalk dataset."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["add_arguments", "build_parser", "main", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``pcavs synth`` options to ``p`` (cheap: nothing heavy is imported)."""
    p.add_argument("out_dir", help="output directory (created; finished clips are skipped on rerun)")
    p.add_argument("--identities", type=int, default=10, help="number of identities")
    p.add_argument("--clips", type=int, default=4, help="clips per identity")
    p.add_argument("--seconds", type=float, default=4.0, help="clip length in seconds")
    p.add_argument("--size", type=int, default=224, help="frame size in pixels (even)")
    p.add_argument("--seed", type=int, default=0, help="master seed")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes")
    p.add_argument("--pose-twins", action="store_true",
                   help="write the pose twins of the dataset these options plan: every clip's motion, blinks and "
                   "words on a new person, under the same paths (training reads them with data.pose_twins)")


def build_parser() -> argparse.ArgumentParser:
    """The stand-alone parser of ``python -m pcavs.synth``."""
    p = argparse.ArgumentParser(prog="pcavs synth", description="Write a SynthTalk dataset "
                                "(VoxCeleb2 layout, mp4 + per-clip JSON ground truth).")
    add_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    """Write the dataset; exit status 2 with one line for a bad argument."""
    # `pcavs synth -- --help` parses "--help" as the folder: an option's name is never meant as one
    if str(args.out_dir).startswith("-"):
        print(f"pcavs synth: error: output folder {args.out_dir!r} starts with '-' (an option's name?); "
              f"see `pcavs synth --help`, or write ./{args.out_dir} for a folder really named so", file=sys.stderr)
        return 2
    from .dataset import write_dataset

    try:
        res = write_dataset(args.out_dir, args.identities, args.clips, args.seconds, args.size, args.seed,
                            args.workers, twins=args.pose_twins)
    except (RuntimeError, ValueError) as e:
        print(f"pcavs synth: error: {e}", file=sys.stderr)
        return 2
    print(f"synth: wrote {res['written']} clips, skipped {res['skipped']} already complete -> {args.out_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m pcavs.synth``; returns a process exit code."""
    return run(build_parser().parse_args(argv))
