"""``pcavs preprocess SRC DST``: talking-face videos -> aligned crops + mel features in WebDataset shards.

What one clip becomes is :mod:`pcavs.data.clips`; the files written (``shards/``, ``dataset.json``,
``skipped.jsonl``) are :mod:`pcavs.data.store`. This module runs the shards and resumes.

Work is split into shards, one task each: in this process (``--workers 1``), a local pool of
``--workers N`` processes, or Ray tasks (``--ray auto|ADDRESS``, :mod:`pcavs.engine`); the bytes
written do not depend on which.

Resuming: the sorted clip list is cut into shards of ``clips_per_shard``; a shard is written to
``.tar.partial``, then its ``.json`` sidecar, then renamed to ``.tar``. A rerun skips shards whose
``.tar`` exists (after checking its sidecar was made with the same settings and clips) and redoes
the rest, so a killed run loses at most the shards in flight and the result is byte-identical.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pcavs.config import ConfigError
from pcavs.data.clips import (
    LABEL_KINDS,
    ClipRef,
    PreprocessConfig,
    PreprocessError,
    SkipClip,
    discover_clips,
    process_clip,
)
from pcavs.data.store import CROP_NAME, shard_paths, write_dataset_json, write_shard
from pcavs.engine import EngineConfig, EngineError, Job, add_ray_arguments, engine_config_from_args, make_engine

__all__ = ["add_arguments", "main", "preprocess", "run_args"]


# ------------------------------------------------------------------------------------ one shard (a task)
_ANALYZER: Any = None


def _analyzer(use_cnn: bool) -> Any:
    global _ANALYZER
    if _ANALYZER is None or _ANALYZER.use_cnn != use_cnn:
        from pcavs.face import FaceAnalyzer

        _ANALYZER = FaceAnalyzer(use_cnn=use_cnn)
    return _ANALYZER


@dataclass(frozen=True)
class _Shared:
    """A run's constants, sent once to every worker (``tick`` only when the shards run in this process)."""

    src: str
    dst: str
    cfg: PreprocessConfig
    label_kind: str
    header: dict[str, Any]
    tick: Callable[[], None] | None = None


def _setup(shared: _Shared) -> _Shared:
    _analyzer(shared.cfg.use_cnn)  # the detector is built once per worker process
    return shared


def _shard_task(shared: _Shared, item: tuple[int, list[ClipRef]]) -> dict[str, Any]:
    """One shard (a task of :mod:`pcavs.engine`): its clips, then the atomic shard write; returns the sidecar.
    Run twice (a retried task), it writes the same bytes under the same names."""
    index, refs = item
    samples, skipped = [], []
    for ref in refs:
        try:
            fields = process_clip(Path(shared.src) / ref.source, ref, shared.cfg, _analyzer(shared.cfg.use_cnn),
                                  shared.label_kind)
            meta = fields["json"]
            entry = {"key": ref.key, "source": ref.source, "label": ref.label, "num_frames": meta["num_frames"]}
            if ref.split is not None:
                entry["split"] = ref.split
            samples.append((ref.key, fields, entry))
        except SkipClip as e:
            skipped.append({"source": ref.source, "reason": e.reason, "detail": e.detail})
        except Exception as e:  # noqa: BLE001 - one odd file must not end a day-long run; it is reported
            skipped.append({"source": ref.source, "reason": "error", "detail": f"{type(e).__name__}: {e}"})
        if shared.tick is not None:
            shared.tick()
    header = {**shared.header, "sources": [r.source for r in refs]}
    return write_shard(Path(shared.dst), index, samples, skipped, header)


# ------------------------------------------------------------------------------------ the run
def _load_done(tar: Path, side: Path, header: dict[str, Any], refs: list[ClipRef]) -> dict[str, Any] | None:
    """The sidecar of a finished shard, or None when the shard must be (re)done."""
    if not tar.exists():
        return None
    try:
        sidecar = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        tar.unlink()  # a .tar without its sidecar was not made by this tool's rename order: redo it
        return None
    expected = {**header, "sources": [r.source for r in refs]}
    made = sidecar.get("settings")
    if isinstance(made, dict) and made.get("crop") != CROP_NAME:
        raise PreprocessError(
            f"{tar}: made with another crop ({made.get('crop')!r}, not {CROP_NAME!r}); delete DST or write to "
            "an empty DST to preprocess again"
        )
    if any(sidecar.get(k) != v for k, v in expected.items()):
        raise PreprocessError(
            f"{tar}: was written with other settings or another clip list (SRC changed?); write to an empty "
            "DST, or delete DST/shards to start over"
        )
    return sidecar


def preprocess(src: str | os.PathLike[str], dst: str | os.PathLike[str], cfg: PreprocessConfig = PreprocessConfig(),
               progress: bool = True, engine: EngineConfig | None = None) -> dict[str, Any]:
    """Run (or resume) preprocessing; returns ``dataset.json``'s content plus ``"run"`` statistics.

    One shard is one task: in this process (``cfg.workers`` 1), a local pool of ``cfg.workers``
    processes, or Ray tasks when ``engine`` says so; the shards are the same bytes either way.
    """
    src_p, dst_p = Path(src).resolve(), Path(dst)
    layout, refs = discover_clips(src_p, cfg.layout)
    label_kind = LABEL_KINDS[layout]
    (dst_p / "shards").mkdir(parents=True, exist_ok=True)
    for junk in (dst_p / "shards").glob("*.partial"):
        junk.unlink()  # left by a killed run
    for junk in (dst_p / "shards").glob("*.tmp"):
        junk.unlink()
    header = {"settings": cfg.output_settings(), "layout": layout, "label_kind": label_kind}
    chunks = [refs[i : i + cfg.clips_per_shard] for i in range(0, len(refs), cfg.clips_per_shard)]
    sidecars: dict[int, dict[str, Any]] = {}
    todo = []
    for i, chunk in enumerate(chunks):
        tar, _, side = shard_paths(dst_p, i)
        done = _load_done(tar, side, header, chunk)
        if done is None:
            todo.append(i)
        else:
            sidecars[i] = done
    start = time.perf_counter()
    total = sum(len(chunks[i]) for i in todo)
    bar = _progress_bar(total, progress)
    ecfg = engine or EngineConfig(workers=cfg.workers if len(todo) > 1 else 1, threads=1)
    try:
        if todo:
            with make_engine(ecfg) as eng:
                if progress:
                    print(f"preprocess: {len(todo)} shards on {eng.describe()}", file=sys.stderr)
                # in this process the bar moves clip by clip; from workers, shard by shard
                tick = (lambda: bar.update(1)) if eng.in_process else None
                shared = _Shared(str(src_p), str(dst_p), cfg, label_kind, header, tick)
                job = Job(_setup, shared, _shard_task, name="pcavs-preprocess")
                items = [(i, chunks[i]) for i in todo]
                on_done = None if eng.in_process else (lambda k, _: bar.update(len(items[k][1])))
                # a shard-level failure (disk full) stops the run; a clip's failure is a skip inside its shard
                for i, sidecar in zip(todo, eng.run(job, items, on_done), strict=True):
                    sidecars[i] = sidecar
    finally:
        bar.close()
    elapsed = time.perf_counter() - start
    ordered = [sidecars[i] for i in range(len(chunks))]
    dataset = write_dataset_json(dst_p, ordered, {"layout": layout, "label_kind": label_kind, "size": cfg.size,
                                                  "keep_audio": cfg.keep_audio, "settings": header["settings"]})
    new_clips = sum(len(sidecars[i]["clips"]) for i in todo)
    new_frames = sum(c["num_frames"] for i in todo for c in sidecars[i]["clips"])
    dataset["run"] = {"shards_done": todo, "seconds": elapsed, "clips_processed": total,
                      "clips_per_s": total / elapsed if elapsed else 0.0,
                      "frames_per_s": new_frames / elapsed if elapsed else 0.0, "clips_written": new_clips}
    return dataset


def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="clip", desc="preprocess", disable=not enabled, dynamic_ncols=True)


# ------------------------------------------------------------------------------------ command line
def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``preprocess`` arguments to ``parser`` (for wiring into the main CLI)."""
    parser.add_argument("src", help="dataset root: SRC/<id>/<video>/<clip>.mp4 or SRC/<word>/<split>/<name>.mp4")
    parser.add_argument("dst", help="output folder (shards/, dataset.json, skipped.jsonl); rerun to resume")
    parser.add_argument("--size", type=int, default=224, help="crop size in pixels (64 for the CPU recipe)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (1 = in-process)")
    parser.add_argument("--layout", choices=("auto", "vox2", "lrw"), default="auto")
    parser.add_argument("--clips-per-shard", type=int, default=64)
    parser.add_argument("--min-frames", type=int, default=30, help="skip clips shorter than this")
    parser.add_argument("--keep-audio", action="store_true", help="also store the 16 kHz waveform")
    parser.add_argument("--max-gap", type=int, default=12, help="longest face-less run (frames) to interpolate")
    parser.add_argument("--cnn", action="store_true", help="CNN face detector fallback (slow; for hard clips)")
    parser.add_argument("--landmarks", choices=("auto", "detect", "sidecar"), default="auto",
                        help="auto: exact landmarks from a SynthTalk <clip>.json when present, else detect")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_ray_arguments(parser)
    return parser


def run_args(args: argparse.Namespace) -> int:
    """Run from parsed :func:`add_arguments` arguments; returns the exit status."""
    cfg = PreprocessConfig(size=args.size, workers=args.workers, layout=args.layout,
                           clips_per_shard=args.clips_per_shard, min_frames=args.min_frames,
                           keep_audio=args.keep_audio, max_gap=args.max_gap, use_cnn=args.cnn,
                           landmarks=args.landmarks)
    engine = engine_config_from_args(args, workers=args.workers, threads=1) if args.ray else None
    ds = preprocess(args.src, args.dst, cfg, progress=not args.quiet, engine=engine)
    c, run = ds["counts"], ds["run"]
    why = ", ".join(f"{k} {v}" for k, v in c["skipped"].items()) or "none"
    print(f"{args.dst}: {c['clips']}/{c['discovered']} clips, {c['frames']} frames ({c['seconds']:.1f} s), "
          f"{len(ds['labels'])} {ds['label_kind']} labels, {len(ds['shards'])} shards; skipped: {why}; "
          f"this run: {run['clips_processed']} clips in {run['seconds']:.1f} s ({run['clips_per_s']:.2f} clips/s, "
          f"{run['frames_per_s']:.1f} frames/s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``pcavs preprocess SRC DST [options]``."""
    parser = add_arguments(argparse.ArgumentParser(prog="pcavs preprocess", description=__doc__.split("\n")[0]))
    args = parser.parse_args(argv)
    try:
        return run_args(args)
    except (PreprocessError, ConfigError, EngineError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
