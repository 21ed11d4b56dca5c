"""``pcavs batch MANIFEST -o OUTDIR``: many videos, the weights loaded once per worker.

The manifest is JSONL (one object a line) or CSV (a header row); one video a row:

- ``identity``, ``audio`` (required), ``pose`` (a video or a track, optional) and ``output`` (a file name
  inside OUTDIR; default ``row-00007.mp4``); relative input paths are taken from the manifest's folder;
- any :class:`~pcavs.infer.pipeline.GenerationOptions` field (``seed``, ``noise``, ``mouth_weight``,
  ``batch_size``, ``paste_back``, ...) and ``pose_mode`` / ``face_index``, per row.

Every row ends in ``OUTDIR/results.jsonl`` (appended, one line per attempt: row, output, status ``done``
/ ``skipped`` / ``failed``, the reason, frames and seconds). A bad row is recorded and never stops the
batch. Outputs are written atomically, so a rerun skips the rows whose output exists and retries the
failed ones. ``--workers N`` runs N local processes; ``--ray auto|ADDRESS`` runs the rows as Ray tasks
(:mod:`pcavs.engine`). The weights are loaded once, here, and sent once to every worker.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pcavs.engine import EngineConfig, EngineError, Job, add_ray_arguments, engine_config_from_args, make_engine
from pcavs.errors import UserError

__all__ = ["BatchRow", "add_arguments", "read_manifest", "run", "run_batch"]

_PATH_KEYS = ("identity", "audio", "pose")
_ROW_KEYS = (*_PATH_KEYS, "output", "pose_mode", "face_index")


class ManifestError(UserError, ValueError):
    """A manifest that cannot be read as a whole (not a row's problem)."""


@dataclass
class BatchRow:
    """One video of a batch."""

    index: int
    output: str
    identity: str | None = None
    audio: str | None = None
    pose: str | None = None
    pose_mode: str | None = None
    face_index: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # set when the row itself is malformed


def _typed(name: str, value: Any) -> Any:
    """CSV cells are text: convert them to the option's type."""
    from pcavs.infer.pipeline import GenerationOptions

    if not isinstance(value, str):
        return value
    kind = {f.name: f.type for f in fields(GenerationOptions)}.get(name, "str")
    text = value.strip()
    if "bool" in str(kind):
        if text.lower() in ("1", "true", "yes"):
            return True
        if text.lower() in ("0", "false", "no", ""):
            return False
        raise ValueError(f"{name}={value!r} is not true/false")
    if "int" in str(kind) and "float" not in str(kind):
        return int(text)
    if "float" in str(kind):
        return None if text == "" else float(text)
    return text


def read_manifest(path: str | os.PathLike[str]) -> list[BatchRow]:
    """The rows of a JSONL or CSV manifest; malformed rows come back with ``error`` set."""
    from pcavs.infer.pipeline import GenerationOptions

    p = Path(path)
    if not p.is_file():
        raise ManifestError(f"{p}: no such manifest file")
    text = p.read_text(encoding="utf-8")
    raw: list[dict[str, Any] | str] = []
    if p.suffix.lower() == ".csv":
        raw = [dict(r) for r in csv.DictReader(text.splitlines())]
    else:
        for n, line in enumerate(text.splitlines()):
            if line.strip():
                try:
                    obj = json.loads(line)
                    raw.append(obj if isinstance(obj, dict) else f"line {n + 1} is not a JSON object")
                except ValueError as e:
                    raw.append(f"line {n + 1} is not JSON ({e})")
    if not raw:
        raise ManifestError(f"{p}: the manifest has no rows")
    option_names = {f.name for f in fields(GenerationOptions)} - {"overwrite", "progress"}
    base, rows, seen = p.parent, [], set()
    for i, item in enumerate(raw):
        row = BatchRow(index=i, output=f"row-{i:05d}.mp4")
        if isinstance(item, str):
            row.error = item
            rows.append(row)
            continue
        item = {k.strip(): v for k, v in item.items() if k is not None and v not in (None, "")}
        unknown = sorted(set(item) - set(_ROW_KEYS) - option_names)
        try:
            if unknown:
                raise ValueError(f"unknown column(s) {', '.join(unknown)}")
            for key in _PATH_KEYS:
                if key in item:
                    setattr(row, key, str(base / str(item[key])))
            if not row.identity or not row.audio:
                raise ValueError("identity and audio are required")
            row.output = str(item.get("output", row.output))
            if Path(row.output).name != row.output or not row.output:
                raise ValueError(f"output {row.output!r} must be a file name (it is written inside OUTDIR)")
            if row.output in seen:
                raise ValueError(f"output {row.output!r} is used by an earlier row")
            seen.add(row.output)
            row.pose_mode = item.get("pose_mode")
            row.face_index = int(item.get("face_index", 0))
            row.options = {k: _typed(k, v) for k, v in item.items() if k in option_names}
            GenerationOptions.from_kwargs(**row.options)  # bad values fail here, as the row's error
        except (ValueError, TypeError) as e:
            row.error = f"bad row: {e}"
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------- workers
@dataclass(frozen=True)
class _Shared:
    """What every worker gets once (pickled into a pool process, or ray.put once)."""

    model: Any  # the PCAVS model, on the CPU; each worker moves it to its device
    device: str
    outdir: str


@dataclass
class _Worker:
    pipe: Any
    outdir: str


def _setup(shared: _Shared) -> _Worker:
    from pcavs.infer.pipeline import TalkingFacePipeline

    return _Worker(TalkingFacePipeline(shared.model, shared.device), shared.outdir)


def _render_row(worker: _Worker, row: BatchRow) -> dict[str, Any]:
    """Generate one row; every problem becomes a ``failed`` record, never an exception."""
    import warnings

    t0 = time.perf_counter()
    record: dict[str, Any] = {"row": row.index, "output": row.output}
    if row.error:
        return {**record, "status": "failed", "reason": row.error}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # overwrite: the row was planned because its output was missing; a rerun of this task (Ray
            # retries a task whose worker died) may find the first attempt's complete file, same bytes
            result = worker.pipe.generate(row.identity, row.audio, row.pose, row.pose_mode,
                                          output=Path(worker.outdir) / row.output, face_index=row.face_index,
                                          **{**row.options, "overwrite": True})
        return {**record, "status": "done", "frames": result.num_frames,
                "seconds": round(time.perf_counter() - t0, 3),
                "warnings": [str(w.message) for w in caught if issubclass(w.category, UserWarning)]}
    except UserError as e:
        return {**record, "status": "failed", "reason": str(e)}
    except OSError as e:  # e.g. an unwritable output folder
        return {**record, "status": "failed", "reason": f"{type(e).__name__}: {e}"}
    except Exception as e:  # noqa: BLE001 - a bug must not stop the other rows; its type is recorded
        return {**record, "status": "failed", "reason": f"internal error {type(e).__name__}: {e}"}


@dataclass
class BatchSummary:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    frames: int = 0
    seconds: float = 0.0

    def text(self) -> str:
        rate = self.frames / self.seconds if self.seconds else 0.0
        return (f"{self.done} done, {self.skipped} skipped (already there), {self.failed} failed; "
                f"{self.frames} frames in {self.seconds:.1f} s ({rate:.1f} frames/s)")


def run_batch(manifest: str | os.PathLike[str], outdir: str | os.PathLike[str], weights: str | os.PathLike[str], *,
              workers: int = 1, device: str = "cpu", threads: int = 0, progress: bool = True,
              engine: EngineConfig | None = None) -> BatchSummary:
    """Run a manifest (see the module docstring); returns the counts, also appended to results.jsonl.

    ``engine`` (default: ``workers`` local processes) may run the rows on a Ray cluster instead; the
    videos are the same bytes either way.
    """
    from tqdm import tqdm

    from pcavs.checkpoint import load_model

    cfg = engine or EngineConfig(workers=workers, threads=threads)
    rows = read_manifest(manifest)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    summary = BatchSummary()
    t0 = time.perf_counter()
    todo = []
    with open(results, "a", encoding="utf-8") as log:
        def record(rec: dict[str, Any]) -> None:
            log.write(json.dumps(rec, sort_keys=True) + "\n")
            log.flush()
            setattr(summary, rec["status"], getattr(summary, rec["status"]) + 1)
            summary.frames += int(rec.get("frames", 0))

        for row in rows:
            if row.error is None and (out / row.output).is_file():  # written atomically: a file is a finished one
                record({"row": row.index, "output": row.output, "status": "skipped"})
            else:
                todo.append(row)
        if todo:
            with make_engine(cfg) as eng:
                if progress:
                    print(f"batch: {len(todo)} rows on {eng.describe()}", file=sys.stderr)
                if eng.in_process and threads:
                    from pcavs.device import set_cpu_threads

                    set_cpu_threads(threads)
                # loaded once here, on the CPU; the workers get it through the pool or Ray's object store
                job = Job(_setup, _Shared(load_model(weights, device="cpu"), device, str(out)), _render_row,
                          name="pcavs-batch")
                bar = tqdm(total=len(todo), unit="video", disable=not progress, file=sys.stderr, dynamic_ncols=True)
                with bar:
                    def done(_: int, rec: dict[str, Any]) -> None:
                        record(rec)
                        bar.update()

                    eng.run(job, todo, done)
    summary.seconds = time.perf_counter() - t0
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", help="JSONL or CSV: identity, audio, [pose], [output], [options] per row")
    parser.add_argument("-o", "--outdir", required=True, help="folder for the videos and results.jsonl")
    parser.add_argument("--weights", default=None, help="weights folder (default: the built-in model)")
    parser.add_argument("--workers", type=int, default=1, help="processes, each loading the weights once")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads (torch, BLAS) per worker (0: 1 with --workers > 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_ray_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from .demo import DEMO_WEIGHTS

    if args.workers < 1:
        print(f"error: --workers must be 1 or more, got {args.workers}", file=sys.stderr)
        return 2
    try:
        engine = engine_config_from_args(args, workers=args.workers, threads=args.threads)
        summary = run_batch(args.manifest, args.outdir, args.weights or DEMO_WEIGHTS, device=args.device,
                            threads=args.threads, progress=not args.quiet, engine=engine)
    except (ManifestError, EngineError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.outdir}: {summary.text()}; details in {Path(args.outdir) / 'results.jsonl'}")
    return 1 if summary.failed else 0
