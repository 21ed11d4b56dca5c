"""The paper's Table 1 protocol on LRW or VoxCeleb2 test videos: generate, then score against the real video.

For every real test video:

1. identity = its first frame (the face in it is detected and aligned by the pipeline);
2. audio = its own sound track, pose = its own head motion (pipeline pose mode ``self``);
3. the generated face (the model's aligned crop, no paste-back) is written to ``OUT/generated/``;
4. it is scored with :func:`pcavs.eval.evaluate.evaluate_video` against the real video (reference and
   pose source = the real video, identity = its first frame, audio = its sound);

then every metric is averaged over the videos that have it. A video that fails (no face in its
first frame, unreadable file) is recorded with its error and left out of the means.

Dataset layouts (``--root``), and what a line of ``--list`` may look like:

* ``vox2``: ``ROOT/mp4/id00017/01dfn2spqyE/00001.mp4`` (the VoxCeleb2 test set as distributed);
  lines ``id00017/01dfn2spqyE/00001`` (with or without ``.mp4``, with or without a leading ``mp4/``);
* ``lrw``: ``ROOT/ABOUT/test/ABOUT_00001.mp4`` (``lipread_mp4``); lines ``ABOUT_00001`` or
  ``ABOUT/test/ABOUT_00001``.

Only the first token of a line counts (lists with extra columns work); blank lines and ``#`` comments
are skipped. Generated videos already in ``OUT/generated`` are reused unless ``regenerate`` is set,
so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pcavs.engine import EngineConfig, Job, make_engine
from pcavs.errors import UserError
from pcavs.eval.evaluate import (
    METRICS,
    EvalOptions,
    EvaluationError,
    VideoScores,
    aggregate,
    evaluate_video,
    format_table,
)
from pcavs.eval.sync import ContrastiveSync
from pcavs.eval.syncnet import SyncNetScorer
from pcavs.face import FaceAnalyzer
from pcavs.fileio import atomic_write_text, write_json
from pcavs.media import MediaError, read_video_frames

__all__ = ["DATASETS", "BenchmarkResult", "read_list", "resolve_entry", "run_benchmark"]

DATASETS = ("lrw", "vox2")


def read_list(path: str | os.PathLike[str]) -> list[str]:
    """Entries of a test list: the first token of every non-blank, non-comment line."""
    p = Path(path)
    if not p.is_file():
        raise EvaluationError(f"{p}: test list not found; pass the dataset's test list with --list")
    entries = []
    for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        entries.append(re.split(r"[\s,]+", line)[0])
    if not entries:
        raise EvaluationError(f"{p}: the test list has no entries")
    return entries


def resolve_entry(root: str | os.PathLike[str], dataset: str, entry: str) -> Path:
    """The video file of one list entry under ``root`` (see the module docstring for the layouts)."""
    if dataset not in DATASETS:
        raise EvaluationError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    r = Path(root)
    e = entry.strip().lstrip("/")
    stem = e[:-4] if e.lower().endswith(".mp4") else e
    candidates = [r / e, r / f"{stem}.mp4"]
    if dataset == "vox2":
        candidates += [r / "mp4" / f"{stem}.mp4", r / "dev" / "mp4" / f"{stem}.mp4"]
    else:
        word = Path(stem).name.rsplit("_", 1)[0]
        candidates += [r / word / "test" / f"{Path(stem).name}.mp4", r / "lipread_mp4" / word / "test" /
                       f"{Path(stem).name}.mp4"]
    for c in candidates:
        if c.is_file():
            return c
    tried = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise EvaluationError(f"{entry}: video not found under {r} (tried {tried}); check --root and --dataset")


def _safe_name(entry: str) -> str:
    stem = entry[:-4] if entry.lower().endswith(".mp4") else entry
    return re.sub(r"[^A-Za-z0-9._-]+", "__", stem.strip("/"))


@dataclass
class BenchmarkResult:
    """Scores of every video, their means, and where everything was written."""

    scores: list[VideoScores]
    summary: dict[str, Any]
    out_dir: Path
    json_path: Path
    table: str


def run_benchmark(
    dataset: str,
    root: str | os.PathLike[str],
    list_path: str | os.PathLike[str],
    weights: str | os.PathLike[str] | Any,
    out_dir: str | os.PathLike[str],
    *,
    syncnet: SyncNetScorer | None = None,
    device: str = "auto",
    limit: int | None = None,
    regenerate: bool = False,
    options: EvalOptions | None = None,
    generation: dict[str, Any] | None = None,
    analyzer: FaceAnalyzer | None = None,
    progress: Callable[[str], None] | None = None,
    engine: EngineConfig | None = None,
) -> BenchmarkResult:
    """Generate and score every listed video; write ``OUT/results.json`` and ``OUT/results.txt``.

    ``weights`` is a weights folder or a loaded :class:`pcavs.model.PCAVS`; ``generation`` holds
    :class:`pcavs.infer.pipeline.GenerationOptions` fields (e.g. ``{"batch_size": 16, "seed": 0}``).
    ``engine`` runs the videos in a local process pool or on a Ray cluster (default: this process);
    the scores and generated videos do not depend on it.
    """
    from pcavs.checkpoint import load_model
    from pcavs.infer.pipeline import resolve_device
    from pcavs.model import PCAVS

    say = progress or (lambda msg: print(msg, file=sys.stderr))
    opts = dataclasses.replace(options or EvalOptions(), generated_aligned=True)
    entries = read_list(list_path)
    if limit is not None:
        entries = entries[: max(0, limit)]
    videos = [(e, resolve_entry(root, dataset, e)) for e in entries]  # every path checked before any work
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise EvaluationError(f"{out}: exists and is not a folder; choose another -o")
    gen_dir = out / "generated"
    gen_dir.mkdir(parents=True, exist_ok=True)
    cfg = engine or EngineConfig()
    dev = resolve_device(device) if not cfg.ray else device  # under Ray each worker resolves its own
    if isinstance(weights, PCAVS):
        model, weights_name = weights, "(model object)"
    else:
        model, weights_name = load_model(weights, device="cpu"), str(weights)
    gen_opts = dict(generation or {})
    t_start = time.perf_counter()
    with make_engine(cfg) as eng:
        # the face analyzer holds dlib objects that do not pickle: workers build their own (the same detector)
        shared = _Shared(model, str(dev), analyzer if eng.in_process else None, syncnet, opts, gen_opts, regenerate,
                         str(gen_dir))
        job = Job(_setup, shared, _score_video, name="pcavs-benchmark")

        def report(k: int, done: tuple[VideoScores, float]) -> None:
            s, seconds = done
            status = "failed: " + s.error.splitlines()[0] if s.error else (
                f"SSIM {s.ssim:.3f}" if s.ssim is not None else "done")
            say(f"[{k + 1}/{len(videos)}] {videos[k][0]}: {status} ({seconds:.1f} s)")

        scores: list[VideoScores] = [s for s, _ in eng.run(job, videos, report)]
    summary = aggregate(scores)
    table = format_table(scores, summary)
    report = {
        "protocol": "PC-AVS Table 1: identity = first frame, pose and audio = the real video (pose mode self)",
        "dataset": dataset,
        "root": str(root),
        "list": str(list_path),
        "weights": weights_name,
        "device": str(dev),
        "elapsed_s": time.perf_counter() - t_start,
        "summary": summary,
        "metrics": {key: {"title": title, "better": better} for key, title, better in METRICS},
        "videos": [s.to_dict() | {"entry": e} for s, (e, _) in zip(scores, videos, strict=True)],
        "settings": dataclasses.asdict(opts) | {"generation": gen_opts},
    }
    json_path = out / "results.json"
    write_json(json_path, report)
    atomic_write_text(out / "results.txt", table + "\n")
    return BenchmarkResult(scores, summary, out, json_path, table)


@dataclass(frozen=True)
class _Shared:
    """What every worker gets once (pickled into a pool process, or ray.put once)."""

    model: Any
    device: str
    analyzer: FaceAnalyzer | None
    syncnet: SyncNetScorer | None
    opts: EvalOptions
    generation: dict[str, Any]
    regenerate: bool
    gen_dir: str


@dataclass
class _Worker:
    pipe: Any
    sync: ContrastiveSync
    syncnet: SyncNetScorer | None
    shared: _Shared


def _setup(shared: _Shared) -> _Worker:
    from pcavs.infer.pipeline import TalkingFacePipeline

    pipe = TalkingFacePipeline(shared.model, shared.device, shared.analyzer)
    s = shared.syncnet
    syncnet = None if s is None else SyncNetScorer(s.net, pipe.device, s.batch_size)
    return _Worker(pipe, ContrastiveSync(pipe.model, pipe.device), syncnet, shared)


def _score_video(worker: _Worker, item: tuple[str, Path]) -> tuple[VideoScores, float]:
    """Generate (unless already there) and score one test video: (scores, seconds); a user-level failure
    is its ``error``. A rerun (Ray retries a task whose worker died) overwrites with the same bytes."""
    entry, real = item
    sh = worker.shared
    gen_path = Path(sh.gen_dir) / f"{_safe_name(entry)}.mp4"
    t0 = time.perf_counter()
    try:
        frames = read_video_frames(real)
        try:
            first = next(frames)
        except StopIteration:
            raise MediaError(f"{real}: the video has no frames; remove it from the list") from None
        finally:
            frames.close()
        if sh.regenerate or not gen_path.is_file():
            worker.pipe.generate(identity=first, audio=str(real), pose_mode="self", output=gen_path, overwrite=True,
                                 **sh.generation)
        s = evaluate_video(gen_path, real, audio=real, pose_source=real, identity=first, sync=worker.sync,
                           syncnet=worker.syncnet, options=sh.opts, analyzer=sh.analyzer)
        s.identity = f"{real} (first frame)"
    except UserError as exc:  # EvaluationError, FaceNotFoundError, bad media: this video's row says why
        s = VideoScores(generated=str(gen_path), reference=str(real), error=str(exc))
    return s, time.perf_counter() - t0
