"""Command-line front ends of ``pcavs evaluate``, ``pcavs report`` and ``pcavs benchmark``.

``pcavs.cli`` adds these with ``add_*_arguments(subparser)`` and calls ``run_*(args)``, which return
the exit status: 0 success, 1 some videos failed (results are still written), 2 a problem the user
can fix (printed as one ``error:`` line). Heavy imports happen inside the ``run_*`` functions so that
building the parser stays instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from pcavs.errors import UserError

__all__ = [
    "add_benchmark_arguments",
    "add_evaluate_arguments",
    "add_report_arguments",
    "run_benchmark",
    "run_evaluate",
    "run_report",
]

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


# ------------------------------------------------------------------------------------------ shared
def _add_common(p: argparse.ArgumentParser, *, weights_required: bool = False) -> None:
    p.add_argument("--weights", metavar="DIR", required=weights_required,
                   help="PC-AVS weights (pcavs folder or official latest_net_*.pth folder): enables the "
                   "lip-sync offset and confidence. Official weights measure it with their own A_sync + mouth "
                   "embedding; any other weights with the SynthTalk sync expert (see --sync-expert). Offset "
                   "sign: +k means the sound comes k frames late (delay the audio 3 frames: +3); below the "
                   "expert's calibrated confidence the offset is reported as 'unreliable'")
    p.add_argument("--sync-expert", metavar="DIR",
                   help="sync expert folder (pcavs train-sync output) to measure lip sync with, instead of the "
                   "built-in pcavs/assets/weights/synthtalk-sync; works without --weights")
    p.add_argument("--syncnet", metavar="PATH",
                   help="SyncNet weights (syncnet_v2.model from joonson/syncnet_python): adds LSE-D and LSE-C")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default: auto)")
    p.add_argument("--fps", type=int, default=25, help="frame rate videos are read at (default: 25)")
    p.add_argument("--detector", choices=("hog", "hog+cnn"), default="hog",
                   help="face detector: hog (fast) or hog+cnn (dlib's CNN when HOG finds nothing; finds more "
                   "faces, 1-3 s per face-less frame on a CPU)")
    p.add_argument("--embedding-stride", type=int, default=1, metavar="N",
                   help="compute face descriptors (identity similarity) on every N-th frame only (default: 1)")
    p.add_argument("--max-shift", type=int, default=15, metavar="K",
                   help="largest audio-video shift searched, in frames (default: 15)")


def _options(args: argparse.Namespace, **extra: Any) -> Any:
    from pcavs.eval.evaluate import EvalOptions

    return EvalOptions(fps=args.fps, use_cnn=args.detector == "hog+cnn", embedding_stride=args.embedding_stride,
                       max_shift=args.max_shift, **extra)


def _sync_models(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """(device, ContrastiveSync or None, SyncNetScorer or None); the SyncNet file is checked first (cheap)."""
    from pcavs.eval.sync import ContrastiveSync
    from pcavs.eval.syncnet import SyncNetScorer
    from pcavs.infer.pipeline import resolve_device

    device = resolve_device(args.device)
    syncnet = SyncNetScorer.from_file(args.syncnet, device) if args.syncnet else None
    sync: Any = None
    expert_dir = getattr(args, "sync_expert", None)
    if getattr(args, "weights", None) and not expert_dir:
        from pcavs.checkpoint import load_model

        model = load_model(args.weights, device=device)
        if model.cfg.name == "official":  # trained on real faces: its own sync stage is the expert
            sync = ContrastiveSync(model, device, threshold=getattr(args, "min_sync_confidence", 0.05))
        else:
            from pcavs.eval.syncexpert import BUILTIN_SYNC_EXPERT

            expert_dir = BUILTIN_SYNC_EXPERT
    if expert_dir:
        from pcavs.eval.syncexpert import load_sync_expert

        sync = load_sync_expert(expert_dir, device)
    return device, sync, syncnet


def _guarded(func: Any, args: argparse.Namespace) -> int:
    try:
        return int(func(args))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _check_positive(args: argparse.Namespace) -> None:
    from pcavs.eval.evaluate import EvaluationError

    if args.fps < 1 or args.embedding_stride < 1 or args.max_shift < 0:
        raise EvaluationError("--fps and --embedding-stride must be 1 or more, --max-shift 0 or more")


def _write_json(path: str | os.PathLike[str], data: Any) -> Path:
    from pcavs.eval.evaluate import EvaluationError
    from pcavs.fileio import write_json

    p = Path(path)
    if p.is_dir():
        raise EvaluationError(f"{p}: is a folder; give a file name such as {p / 'scores.json'}")
    if not p.parent.is_dir():
        raise EvaluationError(f"{p}: folder {p.parent} does not exist; create it or choose another path")
    return write_json(p, data)


# ------------------------------------------------------------------------------------------ evaluate
def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    """``pcavs evaluate GENERATED --reference REAL ...``."""
    p.add_argument("generated", help="generated video, a folder of videos, or a .csv/.json list of pairs "
                   "(columns generated,reference[,audio,pose_source,identity])")
    p.add_argument("--reference", "-r", metavar="REAL",
                   help="the real video (a folder of them when GENERATED is a folder; matched by file name)")
    p.add_argument("--audio", metavar="A", help="audio the video should follow (default: its own sound track)")
    p.add_argument("--pose-source", metavar="P", help="video whose head pose was copied (default: --reference)")
    p.add_argument("--identity", metavar="I",
                   help="identity photo for CSIM (default: the first face in --reference)")
    p.add_argument("--json", metavar="OUT.json", help="write every score to this JSON file")
    p.add_argument("--generated-aligned", action="store_true",
                   help="the generated frames are already aligned face crops (pcavs generate without --paste-back)")
    p.add_argument("--reference-aligned", action="store_true",
                   help="the reference frames are already aligned face crops (e.g. the official preprocessed data)")
    _add_common(p)


def _evaluate(args: argparse.Namespace) -> int:
    from pcavs.eval.pairs import evaluate_many, resolve_pairs
    from pcavs.eval.scores import METRICS, aggregate, format_table

    _check_positive(args)
    pairs = resolve_pairs(args.generated, args.reference, args.audio, args.pose_source, args.identity)
    options = _options(args, generated_aligned=True if args.generated_aligned else None,
                       reference_aligned=True if args.reference_aligned else None)
    _, sync, syncnet = _sync_models(args)

    def progress(k: int, n: int, s: Any) -> None:
        if n > 1:
            status = f"failed: {s.error.splitlines()[0]}" if s.error else "done"
            print(f"[{k + 1}/{n}] {Path(s.generated).name}: {status}", file=sys.stderr)

    scores = evaluate_many(pairs, sync=sync, syncnet=syncnet, options=options, progress=progress)
    summary = aggregate(scores)
    if args.json:
        import dataclasses

        out = _write_json(args.json, {
            "videos": [s.to_dict() for s in scores],
            "summary": summary,
            "metrics": {key: {"title": title, "better": better} for key, title, better in METRICS},
            "settings": dataclasses.asdict(options) | {"weights": args.weights, "syncnet": args.syncnet},
        })
    failed = [s for s in scores if s.error]
    if len(scores) == 1 and failed:
        print(f"error: {failed[0].error}", file=sys.stderr)
        return EXIT_USAGE
    print(format_table(scores, summary))
    for s in scores:
        for note in s.notes:
            print(f"note ({Path(s.generated).name}): {note}", file=sys.stderr)
    if args.json:
        print(f"wrote {out}")
    return EXIT_SOME_FAILED if failed else EXIT_OK


def run_evaluate(args: argparse.Namespace) -> int:
    """Score generated videos; print a table, optionally write JSON."""
    return _guarded(_evaluate, args)


# ------------------------------------------------------------------------------------------ report
def add_report_arguments(p: argparse.ArgumentParser) -> None:
    """``pcavs report VIDEO -o REPORT_DIR ...``."""
    p.add_argument("video", help="the talking-face video to inspect")
    p.add_argument("-o", "--output", required=True, metavar="REPORT_DIR",
                   help="folder for index.html, the PNG plots and report.json (created if needed)")
    p.add_argument("--audio", metavar="A", help="audio the video should follow (default: its own sound track)")
    p.add_argument("--identity", metavar="I",
                   help="identity photo (default: compare each frame with the video's own average face)")
    p.add_argument("--aligned", action="store_true", help="the frames are already aligned face crops")
    p.add_argument("--sync-window", type=int, default=25, metavar="N",
                   help="frames per sliding lip-sync window (default: 25, one second)")
    p.add_argument("--identity-threshold", type=float, default=0.9, metavar="S",
                   help="flag frames whose identity similarity is below this (default: 0.9)")
    p.add_argument("--blur-ratio", type=float, default=0.5, metavar="R",
                   help="flag frames whose sharpness is below R x the median (default: 0.5)")
    p.add_argument("--min-sync-confidence", type=float, default=0.05, metavar="C",
                   help="lip-sync confidence below this is reported as weak (default: 0.05)")
    _add_common(p)


def _report(args: argparse.Namespace) -> int:
    from pcavs.eval.evaluate import EvaluationError
    from pcavs.eval.quality import ReportOptions
    from pcavs.eval.report import make_report

    _check_positive(args)
    if args.sync_window < 1 or not 0 < args.blur_ratio < 1:
        raise EvaluationError("--sync-window must be 1 or more and --blur-ratio between 0 and 1")
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise EvaluationError(f"{out}: exists and is not a folder; choose another -o")
    options = _options(args, generated_aligned=True if args.aligned else None)
    ropts = ReportOptions(sync_window=args.sync_window, identity_threshold=args.identity_threshold,
                          blur_ratio=args.blur_ratio, min_sync_confidence=args.min_sync_confidence)
    _, sync, syncnet = _sync_models(args)
    page, _, flags = make_report(args.video, out, audio=args.audio, identity=args.identity, sync=sync,
                                 syncnet=syncnet, options=options, report_options=ropts)
    for f in flags:
        print(f"{f.severity:>7}: {f.message}")
    print(f"wrote {page} (and report.json, plots)")
    return EXIT_OK


def run_report(args: argparse.Namespace) -> int:
    """Write a per-frame quality report of one video."""
    return _guarded(_report, args)


# ------------------------------------------------------------------------------------------ benchmark
def add_benchmark_arguments(p: argparse.ArgumentParser) -> None:
    """``pcavs benchmark --dataset lrw|vox2 --root DIR --list test.txt --weights W [-o OUT]``."""
    p.add_argument("--dataset", required=True, choices=("lrw", "vox2"), help="test set layout under --root")
    p.add_argument("--root", required=True, metavar="DIR", help="dataset folder (vox2: contains mp4/; lrw: WORD/)")
    p.add_argument("--list", required=True, metavar="TXT", help="test list, one video per line")
    p.add_argument("-o", "--output", default="benchmark", metavar="OUT",
                   help="folder for generated/, results.json and results.txt (default: ./benchmark)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N videos of the list")
    p.add_argument("--regenerate", action="store_true", help="generate again even if OUT/generated has the video")
    p.add_argument("--batch-size", type=int, default=8, help="frames generated per step (default: 8)")
    p.add_argument("--seed", type=int, default=0, help="generator noise seed (default: 0)")
    p.add_argument("--workers", type=int, default=1, help="local processes, each loading the model once (default: 1)")
    _add_common(p, weights_required=True)
    from pcavs.engine import add_ray_arguments

    add_ray_arguments(p)


def _benchmark(args: argparse.Namespace) -> int:
    from pcavs.eval.benchmark import run_benchmark as bench

    _check_positive(args)
    from pcavs.engine import engine_config_from_args
    from pcavs.eval.syncnet import SyncNetScorer
    from pcavs.infer.pipeline import resolve_device

    engine = engine_config_from_args(args, workers=args.workers)
    # under Ray the workers pick their device (the head node may have no GPU); SyncNet travels on the CPU
    device = args.device if engine.ray else str(resolve_device(args.device))
    syncnet = SyncNetScorer.from_file(args.syncnet, "cpu" if engine.ray else device) if args.syncnet else None
    result = bench(args.dataset, args.root, args.list, args.weights, args.output, syncnet=syncnet,
                   device=device, limit=args.limit, regenerate=args.regenerate, options=_options(args),
                   generation={"batch_size": args.batch_size, "seed": args.seed}, engine=engine)
    print(result.table)
    print(f"wrote {result.json_path}")
    return EXIT_SOME_FAILED if result.summary["failed"] else EXIT_OK


def run_benchmark(args: argparse.Namespace) -> int:
    """Generate and score a test set with the paper's protocol."""
    return _guarded(_benchmark, args)
