"""Command line: parses arguments and calls the library; no logic of its own.

Errors a user can act on (bad files, wrong weights, bad config keys: :class:`pcavs.errors.UserError`)
print one message and exit with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pcavs.errors import UserError

EXIT_USAGE = 2


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
    print("resolved configuration (override any key as key=value):")

    def walk(d: dict, prefix: str = "") -> None:
        for key, value in d.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                print(f"  {prefix}{key} = {value!r}")

    walk(to_dict(cfg))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from pcavs.infer.demo import DEMO_WEIGHTS, run_demo

    weights = Path(args.weights) if args.weights else DEMO_WEIGHTS
    if not weights.exists():
        raise UserError(f"{weights}: the built-in model is missing; reinstall pcavs or pass --weights DIR")
    _, summary = run_demo(args.output, weights=weights, progress=not args.quiet)
    print(summary)
    return 0


# --- options of the commands above (every command: one add_*(parser) and one run function) --------
def add_verify_reference_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="folder with reference.safetensors and state_dict_layout.json")


def add_convert_official_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", help="folder with the official latest_net_*.pth files")
    p.add_argument("dst", help="pcavs weights folder to write (model.safetensors + config.json)")


def add_export_official_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("weights", help="pcavs weights folder")
    p.add_argument("dst", help="folder to write latest_net_*.pth into")


def add_info_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="official")
    p.add_argument("--json", action="store_true", help="print the resolved config as JSON (instead of key = value)")
    p.add_argument("overrides", nargs="*", help="key=value config overrides, e.g. generator.mapping_layers=0")


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", default="demo.mp4")
    p.add_argument("--weights", default=None, help="another weights folder (default: the built-in small model)")
    p.add_argument("--quiet", action="store_true")


# --- parser -----------------------------------------------------------------------------------
# (name, help, module, its add-arguments function, its run function). One pattern for every command:
# its options are registered on its own subparser, so `pcavs NAME --help` lists them all, and no
# command passes raw arguments through to another parser.
COMMANDS: tuple[tuple[str, str, str, str, str], ...] = (
    ("verify-reference", "check the networks against the official code's vectors",
     "pcavs.cli", "add_verify_reference_arguments", "cmd_verify_reference"),
    ("convert-official", "official latest_net_*.pth folder -> pcavs safetensors",
     "pcavs.cli", "add_convert_official_arguments", "cmd_convert_official"),
    ("export-official", "pcavs weights -> latest_net_*.pth the official code loads",
     "pcavs.cli", "add_export_official_arguments", "cmd_export_official"),
    ("info", "print a preset's configuration and parameter counts", "pcavs.cli", "add_info_arguments", "cmd_info"),
    ("generate", "talking-face video from a photo, speech and a pose video", "pcavs.infer.cli", "add_arguments", "run"),
    ("live", "a talking face from live audio (a file played in real time, or PCM on stdin) into a growing "
     "fragmented mp4 or HLS playlist", "pcavs.infer.live", "add_arguments", "run"),
    ("preprocess", "raw talking-face videos -> training shards", "pcavs.data.preprocess", "add_arguments", "run_args"),
    ("train", "train a stage (sync, identity, joint) on a preprocessed dataset",
     "pcavs.train.__main__", "add_arguments", "run"),
    ("evaluate", "score generated videos: SSIM, PSNR, CPBD, LMD, CSIM, pose, sync",
     "pcavs.eval.cli", "add_evaluate_arguments", "run_evaluate"),
    ("report", "per-frame quality report (HTML + PNG plots + JSON) of one video",
     "pcavs.eval.cli", "add_report_arguments", "run_report"),
    ("benchmark", "the paper's Table 1 protocol on LRW or VoxCeleb2 test lists",
     "pcavs.eval.cli", "add_benchmark_arguments", "run_benchmark"),
    ("ui", "local web page (Gradio) to make talking-face videos", "pcavs.ui.cli", "add_arguments", "run"),
    ("demo", "make demo.mp4 (identity | pose source | result) from the built-in model and inputs",
     "pcavs.cli", "add_demo_arguments", "cmd_demo"),
    ("pose", "head-motion tracks: extract what the pose encoder sees", "pcavs.posetrack.cli", "add_arguments", "run"),
    ("batch", "many videos from a manifest (JSONL/CSV), weights loaded once per worker; resumable",
     "pcavs.infer.batch", "add_arguments", "run"),
    ("synth", "render SynthTalk talking-head videos with exact ground truth",
     "pcavs.synth.cli", "add_arguments", "run"),
    ("train-sync", "train the SynthTalk lip-sync expert that evaluate and report measure sync with",
     "pcavs.eval.syncexpert_train", "add_arguments", "run"),
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from pcavs import __version__

    parser = argparse.ArgumentParser(prog="pcavs", description="PC-AVS talking-face generation in pure PyTorch")
    parser.add_argument("--version", action="version", version=f"pcavs {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_, module_name, add_name, run_name in COMMANDS:
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_, description=help_)
        getattr(module, add_name)(p)
        p.set_defaults(func=getattr(module, run_name))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UserError, FileNotFoundError) as exc:  # every user-fixable error derives from UserError
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
