"""Many videos: the (generated, reference, ...) pairs of a list or folders, evaluated in turn."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pcavs.eval.common import IMAGE_SUFFIXES, VIDEO_SUFFIXES, EvalOptions, EvaluationError, check_file
from pcavs.eval.evaluate import evaluate_video
from pcavs.eval.scores import VideoScores
from pcavs.eval.sync import ContrastiveSync
from pcavs.eval.syncnet import SyncNetScorer
from pcavs.face import (
    FaceAnalyzer,
    FaceNotFoundError,
)
from pcavs.media import MediaError


@dataclass
class EvalPair:
    """One row of a batch evaluation."""

    generated: Path
    reference: Path | None = None
    audio: Path | None = None
    pose_source: Path | None = None
    identity: Path | None = None


_COLUMNS = ("generated", "reference", "audio", "pose_source", "identity")


def load_pairs(list_path: str | os.PathLike[str]) -> list[EvalPair]:
    """Read a CSV (header ``generated,reference[,audio,pose_source,identity]``) or JSON list of pairs.

    JSON is a list of objects with those keys (or ``{"pairs": [...]}``). Relative paths are relative to
    the list file's folder; empty cells mean "not given".
    """
    import csv
    import json

    p = check_file(list_path, "list file")
    base = p.parent
    rows: list[dict[str, Any]]
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(p.read_text())
            if isinstance(data, dict):
                data = data.get("pairs")
            if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
                raise EvaluationError(f"{p}: expected a JSON list of objects with keys {', '.join(_COLUMNS)}")
            rows = data
        else:
            with p.open(newline="") as f:
                reader = csv.DictReader(f)
                if reader.fieldnames is None or "generated" not in [c.strip() for c in reader.fieldnames]:
                    raise EvaluationError(
                        f"{p}: the first line must be a header naming the columns, e.g. "
                        "generated,reference,audio,pose_source,identity"
                    )
                rows = [{(k or "").strip(): v for k, v in r.items()} for r in reader]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvaluationError(f"{p}: cannot read the list ({exc}); use UTF-8 CSV or JSON") from exc
    pairs = []
    for n, row in enumerate(rows, start=2 if p.suffix.lower() != ".json" else 1):
        row = {k.replace("-", "_"): v for k, v in row.items()}
        unknown = set(row) - set(_COLUMNS)
        if unknown:
            raise EvaluationError(
                f"{p}: unknown column(s) {', '.join(sorted(unknown))}; allowed: {', '.join(_COLUMNS)}"
            )

        def path(key: str, row: dict[str, Any] = row) -> Path | None:
            v = row.get(key)
            if v is None or not str(v).strip():
                return None
            q = Path(str(v).strip()).expanduser()
            return q if q.is_absolute() else base / q

        gen = path("generated")
        if gen is None:
            raise EvaluationError(f"{p}: row {n} has no 'generated' video")
        pairs.append(EvalPair(gen, path("reference"), path("audio"), path("pose_source"), path("identity")))
    if not pairs:
        raise EvaluationError(f"{p}: the list is empty")
    return pairs


def _by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    return {f.stem: f for f in sorted(folder.iterdir()) if f.is_file() and f.suffix.lower() in suffixes}


def resolve_pairs(
    generated: str | os.PathLike[str],
    reference: str | os.PathLike[str] | None = None,
    audio: str | os.PathLike[str] | None = None,
    pose_source: str | os.PathLike[str] | None = None,
    identity: str | os.PathLike[str] | None = None,
) -> list[EvalPair]:
    """What to evaluate: one video, a folder of videos (others matched by file stem), or a list file."""
    g = Path(generated)
    if not g.exists():
        raise EvaluationError(f"{g}: not found; pass a generated video, a folder of videos or a .csv/.json list")
    if g.is_file() and g.suffix.lower() in (".csv", ".json"):
        if any(x is not None for x in (reference, audio, pose_source, identity)):
            raise EvaluationError(f"{g}: with a list file, give the other inputs as its columns, not as options")
        return load_pairs(g)
    if g.is_file():
        return [EvalPair(g, *(None if x is None else Path(x) for x in (reference, audio, pose_source, identity)))]
    videos = _by_stem(g, VIDEO_SUFFIXES)
    if not videos:
        raise EvaluationError(f"{g}: the folder has no videos ({', '.join(VIDEO_SUFFIXES)})")

    def matcher(x: str | os.PathLike[str] | None, role: str, suffixes: tuple[str, ...]) -> Any:
        if x is None:
            return lambda stem: None
        q = Path(x)
        if not q.exists():
            raise EvaluationError(f"{q}: {role} not found; check the path")
        if q.is_file():
            return lambda stem: q
        table = _by_stem(q, suffixes)

        def find(stem: str) -> Path:
            if stem not in table:
                raise EvaluationError(f"{q}: no {role} named {stem}.* to match {g / stem}; add it or remove the video")
            return table[stem]

        return find

    ref_f = matcher(reference, "reference video", VIDEO_SUFFIXES)
    aud_f = matcher(audio, "audio", VIDEO_SUFFIXES + (".wav", ".mp3", ".flac", ".m4a", ".aac", ".ogg"))
    pose_f = matcher(pose_source, "pose video", VIDEO_SUFFIXES)
    id_f = matcher(identity, "identity photo", IMAGE_SUFFIXES + VIDEO_SUFFIXES)
    return [EvalPair(v, ref_f(s), aud_f(s), pose_f(s), id_f(s)) for s, v in videos.items()]


def evaluate_many(
    pairs: Sequence[EvalPair],
    *,
    sync: ContrastiveSync | None = None,
    syncnet: SyncNetScorer | None = None,
    options: EvalOptions = EvalOptions(),
    analyzer: FaceAnalyzer | None = None,
    progress: Any = None,
) -> list[VideoScores]:
    """:func:`evaluate_video` for every pair; a pair that fails gets ``error`` set instead of stopping the run."""
    out = []
    for k, pair in enumerate(pairs):
        try:
            s = evaluate_video(pair.generated, pair.reference, audio=pair.audio, pose_source=pair.pose_source,
                               identity=pair.identity, sync=sync, syncnet=syncnet, options=options, analyzer=analyzer)
        except (EvaluationError, MediaError, FaceNotFoundError) as exc:
            s = VideoScores(generated=str(pair.generated), reference=None if pair.reference is None else str(
                pair.reference), error=str(exc))
        out.append(s)
        if progress is not None:
            progress(k, len(pairs), s)
    return out
