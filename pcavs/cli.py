"""Command line: parses arguments and calls the library; no logic of its own.

Errors a user can act on (bad files, wrong weights, bad config keys) print one message and exit
with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

EXIT_USAGE = 2


class UserError(Exception):
    """Raised by command functions for problems the user can fix."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from pcavs.checkpoint import CheckpointError

    errors: list[type[BaseException]] = [UserError, CheckpointError, FileNotFoundError]
    for module, name in (
        ("pcavs.media", "MediaError"),
        ("pcavs.face", "FaceNotFoundError"),
        ("pcavs.config", "ConfigError"),
        ("pcavs.data.preprocess", "PreprocessError"),
        ("pcavs.data.shards", "ShardError"),
        ("pcavs.infer.sources", "InputError"),
        ("pcavs.posetrack", "TrackFileError"),
    ):
        try:
            errors.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


# --- commands ---------------------------------------------------------------------------------
def cmd_verify_reference(args: argparse.Namespace) -> int:
    from pcavs.reference import format_table, load_vectors, verify

    folder = Path(args.folder)
    if not (folder / "reference.safetensors").exists() or not (folder / "state_dict_layout.json").exists():
        raise UserError(f"{folder}: expected reference.safetensors and state_dict_layout.json in this folder")
    rows = verify(folder)
    _, meta = load_vectors(folder)
    print(format_table(rows, meta.get("salt")))
    return 0 if all(r.ok for r in rows) else 1


def cmd_convert_official(args: argparse.Namespace) -> int:
    from pcavs.checkpoint import convert_official

    out = convert_official(args.src, args.dst)
    print(f"converted {args.src} -> {out} (model.safetensors + config.json)")
    return 0


def cmd_export_official(args: argparse.Namespace) -> int:
    from pcavs.checkpoint import export_official, load_model

    for path in export_official(load_model(args.weights), args.dst):
        print(f"wrote {path}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import json

    from pcavs.config import preset, to_dict
    from pcavs.model import PCAVS, parameter_counts

    cfg = preset(args.preset, args.overrides)
    model = PCAVS(cfg, with_discriminator=True)
    counts = parameter_counts(model)
    print(f"preset {cfg.name}: image {cfg.image_size}x{cfg.image_size}, style {cfg.style_dim}")
    for name, n in counts.items():
        print(f"  {name:<7}{n:>14,}")
    mapping = sum(p.numel() for p in model.G.style.parameters())
    constant = sum(p.numel() for n, p in model.G.named_parameters() if n.startswith("input."))
    print(f"  of G, never run at inference: mapping MLP {mapping:,}, constant input {constant:,}")
    if args.json:
        print(json.dumps({"config": to_dict(cfg), "parameters": counts}, indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from pcavs.infer.demo import DEMO_WEIGHTS, run_demo

    weights = Path(args.weights) if args.weights else DEMO_WEIGHTS
    if not weights.exists():
        raise UserError(f"{weights}: the built-in model is missing; reinstall pcavs or pass --weights DIR")
    _, summary = run_demo(args.output, weights=weights, progress=not args.quiet)
    print(summary)
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from pcavs.synth.__main__ import main as synth_main

    return int(synth_main(args.rest) or 0)


# --- parser -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from pcavs import __version__

    parser = argparse.ArgumentParser(prog="pcavs", description="PC-AVS talking-face generation in pure PyTorch")
    parser.add_argument("--version", action="version", version=f"pcavs {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    p = add("verify-reference", cmd_verify_reference, "check the networks against the official code's vectors")
    p.add_argument("folder", help="folder with reference.safetensors and state_dict_layout.json")

    p = add("convert-official", cmd_convert_official, "official latest_net_*.pth folder -> pcavs safetensors")
    p.add_argument("src")
    p.add_argument("dst")

    p = add("export-official", cmd_export_official, "pcavs weights -> latest_net_*.pth the official code loads")
    p.add_argument("weights")
    p.add_argument("dst")

    p = add("info", cmd_info, "print a preset's configuration and parameter counts")
    p.add_argument("--preset", default="official")
    p.add_argument("--json", action="store_true", help="also print the resolved config as JSON")
    p.add_argument("overrides", nargs="*", help="key=value config overrides, e.g. generator.mapping_layers=0")

    from pcavs.infer import cli as infer_cli

    p = add("generate", lambda a: infer_cli.run(a), "talking-face video from a photo, speech and a pose video")
    infer_cli.add_arguments(p)

    from pcavs.data import preprocess as preprocess_cli

    p = add("preprocess", lambda a: preprocess_cli.run_args(a), "raw talking-face videos -> training shards")
    preprocess_cli.add_arguments(p)

    from pcavs.train import __main__ as train_cli

    p = add("train", lambda a: train_cli.run(a), "train a stage (sync, identity, joint) on a preprocessed dataset")
    train_cli.add_arguments(p)

    from pcavs.eval import cli as eval_cli

    p = add("evaluate", eval_cli.run_evaluate, "score generated videos: SSIM, PSNR, CPBD, LMD, CSIM, pose, sync")
    eval_cli.add_evaluate_arguments(p)
    p = add("report", eval_cli.run_report, "per-frame quality report (HTML + PNG plots + JSON) of one video")
    eval_cli.add_report_arguments(p)
    p = add("benchmark", eval_cli.run_benchmark, "the paper's Table 1 protocol on LRW or VoxCeleb2 test lists")
    eval_cli.add_benchmark_arguments(p)

    from pcavs.ui import cli as ui_cli

    p = add("ui", lambda a: ui_cli.run(a), "local web page (Gradio) to make talking-face videos")
    ui_cli.add_arguments(p)

    p = add("demo", cmd_demo, "make demo.mp4 (identity | pose source | result) from the built-in model and inputs")
    p.add_argument("-o", "--output", default="demo.mp4")
    p.add_argument("--weights", default=None, help="another weights folder (default: the built-in small model)")
    p.add_argument("--quiet", action="store_true")

    from pcavs.posetrack import cli as pose_cli

    p = add("pose", lambda a: pose_cli.run(a), "head-motion tracks: extract what the pose encoder sees")
    pose_cli.add_arguments(p)

    p = add("synth", cmd_synth, "render SynthTalk talking-head videos with exact ground truth")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments of python -m pcavs.synth")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except _user_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
