"""``pcavs preprocess SRC DST``: talking-face videos -> aligned crops + mel features in WebDataset shards.

Per clip: frames are streamed at 25 fps, the face is tracked (short gaps interpolated, cuts found), and
every frame is warped with the official clip crop (:mod:`pcavs.face.clip`, the same crop inference uses
for pose videos: one similarity per shot, the mouth pinned, so roll and zoom stay visible) to
``size`` x ``size``; the video is decoded twice (landmarks, then crops) so memory stays bounded. The
official mel-spectrogram is computed from the 16 kHz audio. Video and
audio are trimmed to a common length of ``T = min(video frames, num_video_frames(audio samples))``.

Output (``DST``)::

    shards/shard-000000.tar   samples {key}.frames.npy, .mel.npy, .landmarks.npy, [.audio.npy], .json
    shards/shard-000000.json  clips written (with member byte offsets) and clips skipped, with reasons
    dataset.json              labels, counts, shard list (written last: its presence means "complete")
    skipped.jsonl             one line per skipped clip: source, reason, detail

Stored mel rows: ``min(4*T + 8, rows of the whole clip)``, i.e. exactly what
``mel_windows(mel, range(T))`` reads, so the windows are identical to those of the untrimmed clip.
``audio.npy`` (``--keep-audio``) holds the first ``640*T`` samples.

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
import dataclasses
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pcavs import __version__
from pcavs.audio import DEFAULT_AUDIO, melspectrogram, num_video_frames, rows_for_frames
from pcavs.config import ConfigError
from pcavs.data.shards import ShardWriter
from pcavs.engine import EngineConfig, EngineError, Job, add_ray_arguments, engine_config_from_args, make_engine
from pcavs.errors import UserError
from pcavs.fileio import atomic_write_text

__all__ = [
    "CROP_NAME",
    "FORMAT_VERSION",
    "ClipRef",
    "PreprocessConfig",
    "PreprocessError",
    "SkipClip",
    "add_arguments",
    "discover_clips",
    "main",
    "preprocess",
    "process_clip",
    "write_dataset_json",
    "write_shard",
]

#: v2: the official clip crop (one similarity per shot, the mouth pinned), so in-clip roll and zoom
#: stay visible; v1 levelled every frame (a per-frame similarity smoothed over 9 frames).
CROP_NAME = "pcavs-official-clip-v2"
FORMAT_VERSION = 2
FPS = 25
SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS
LRW_SPLITS = frozenset({"train", "val", "test"})
LABEL_KINDS = {"vox2": "identity", "lrw": "word"}
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class PreprocessError(UserError, RuntimeError):
    """The run cannot proceed (bad SRC/DST or settings); the message says what to do."""


class SkipClip(Exception):
    """A clip that is left out of the dataset, with a short machine-readable ``reason``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class ClipRef:
    """One discovered clip: ``source`` is its path relative to SRC (POSIX separators)."""

    source: str
    label: str
    key: str
    split: str | None = None


@dataclass(frozen=True)
class PreprocessConfig:
    """Settings of a preprocessing run (all but ``workers`` and ``layout`` affect the output bytes)."""

    size: int = 224
    workers: int = 1
    layout: str = "auto"  # auto | vox2 | lrw
    clips_per_shard: int = 64
    min_frames: int = 30
    keep_audio: bool = False
    max_gap: int = 12  # longest face-less run (frames) that is interpolated; longer -> skip the clip
    use_cnn: bool = False  # dlib's CNN fallback costs ~1-3 s per face-less frame on a CPU core
    landmarks: str = "auto"  # auto: a SynthTalk sidecar's exact landmarks when present, else detect

    def __post_init__(self) -> None:
        if not 16 <= self.size <= 1024:
            raise ConfigError(f"size must be in 16..1024, got {self.size}")
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if self.layout not in ("auto", "vox2", "lrw"):
            raise ConfigError(f"layout must be auto, vox2 or lrw, got {self.layout!r}")
        if self.landmarks not in ("auto", "detect", "sidecar"):
            raise ConfigError(f"landmarks must be auto, detect or sidecar, got {self.landmarks!r}")
        if self.clips_per_shard < 1 or self.min_frames < 1 or self.max_gap < 0:
            raise ConfigError("clips_per_shard and min_frames must be >= 1 and max_gap >= 0")

    def output_settings(self) -> dict[str, Any]:
        """The settings that determine the shard contents (checked when resuming)."""
        d = dataclasses.asdict(self)
        del d["workers"], d["layout"]
        return {**d, "crop": CROP_NAME, "version": FORMAT_VERSION}


# ------------------------------------------------------------------------------------ discovery
def _key(parts: Sequence[str]) -> str:
    return "__".join(_KEY_UNSAFE.sub("_", p) for p in parts)


def discover_clips(src: str | os.PathLike[str], layout: str = "auto") -> tuple[str, list[ClipRef]]:
    """Find ``SRC/<a>/<b>/<clip>.mp4`` clips, sorted; returns ``(layout, clips)``.

    ``vox2``: ``<id>/<video>/<clip>.mp4``, label = identity. ``lrw``: ``<word>/<split>/<name>.mp4``,
    label = word. ``auto`` picks ``lrw`` when every middle folder is train/val/test.
    """
    root = Path(src)
    if not root.is_dir():
        raise PreprocessError(f"{root}: source folder not found; pass the dataset root (SRC/<id>/<video>/<clip>.mp4)")
    paths = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*/*.mp4") if p.is_file())
    if not paths:
        raise PreprocessError(
            f"{root}: no clips found; expected SRC/<id>/<video>/<clip>.mp4 (VoxCeleb2) or "
            "SRC/<word>/<split>/<name>.mp4 (LRW)"
        )
    if layout == "auto":
        layout = "lrw" if all(p.split("/")[1] in LRW_SPLITS for p in paths) else "vox2"
    elif layout not in LABEL_KINDS:
        raise PreprocessError(f"unknown layout {layout!r}; use auto, vox2 or lrw")
    clips, seen = [], {}
    for rel in paths:
        a, b, name = rel.split("/")
        key = _key([a, b, name[: -len(".mp4")]])
        if key in seen:
            raise PreprocessError(f"{root}: clips {seen[key]} and {rel} map to the same key {key}; rename one of them")
        seen[key] = rel
        clips.append(ClipRef(rel, a, key, b if layout == "lrw" else None))
    return layout, clips


# ------------------------------------------------------------------------------------ one clip
def process_clip(path: str | os.PathLike[str], ref: ClipRef, cfg: PreprocessConfig, analyzer: Any = None,
                 label_kind: str = "identity") -> dict[str, Any]:
    """Aligned crops, mel and metadata of one clip as shard fields; raises :class:`SkipClip`."""
    from pcavs.face import (
        FaceLostError,
        FaceNotFoundError,
        clip_crops,
        compose,
        crop_matrix,
        track_clip,
        transform_points,
    )
    from pcavs.media import MediaError, probe_video, read_audio, read_video_frames

    path = Path(path)
    try:
        info = probe_video(path, fps=FPS)
    except MediaError as e:
        raise SkipClip("no_video" if "no video stream" in str(e) else "unreadable", str(e)) from None
    if not info.has_audio:
        raise SkipClip("no_audio", f"{path}: has no audio stream")
    try:
        audio = read_audio(path, SAMPLE_RATE)
    except MediaError as e:
        raise SkipClip("no_audio" if "no samples" in str(e) else "unreadable", str(e)) from None
    limit = min(info.num_frames, num_video_frames(audio.size, FPS, SAMPLE_RATE))
    if limit < cfg.min_frames:
        raise SkipClip("too_short", f"{path}: {limit} frames with audio, fewer than min_frames={cfg.min_frames}")

    given = _sidecar_landmarks(path, cfg.landmarks)
    try:
        # pass 1: landmarks only (bounded memory); pass 2 below decodes again and warps
        track = track_clip(read_video_frames(path, fps=FPS), analyzer, max_gap=cfg.max_gap, landmarks=given,
                           limit=limit, name=str(path))
    except FaceLostError as e:
        raise SkipClip("no_face" if e.never_seen else "face_lost", str(e)) from None
    except FaceNotFoundError as e:
        raise SkipClip("no_face", str(e)) from None
    except MediaError as e:
        raise SkipClip("unreadable", str(e)) from None
    t = len(track)
    if t < cfg.min_frames:
        raise SkipClip("too_short", f"{path}: {t} decodable frames, fewer than min_frames={cfg.min_frames}")
    frame_ms = track.frame_matrices()
    to_crop = crop_matrix(cfg.size)
    try:
        crops = list(clip_crops(read_video_frames(path, fps=FPS), frame_ms, cfg.size))
    except MediaError as e:
        raise SkipClip("unreadable", str(e)) from None
    if len(crops) != t:
        raise SkipClip("unreadable", f"{path}: decoded {len(crops)} frames on the second pass, {t} on the first")
    lms = [transform_points(compose(to_crop, m), lm) for m, lm in zip(frame_ms, track.landmarks, strict=True)]
    interpolated = int(track.filled.sum())

    mel = melspectrogram(audio).numpy()  # whole clip: RMS normalisation as at inference
    mel = np.ascontiguousarray(mel[: rows_for_frames(t)])  # rows the windows of frames 0..T-1 read
    landmarks = np.stack(lms).astype(np.float16)
    meta: dict[str, Any] = {
        "key": ref.key,
        "label": ref.label,
        "label_kind": label_kind,
        "source": ref.source,
        "num_frames": t,
        "fps": FPS,
        "size": cfg.size,
        "sample_rate": SAMPLE_RATE,
        "mel_rows": int(mel.shape[0]),
        "crop": CROP_NAME,
        "interpolated_frames": interpolated,
        "shots": track.num_shots,
        "mean_landmarks": np.round(np.mean(np.stack(lms), axis=0), 2).tolist(),
    }
    if ref.split is not None:
        meta["split"] = ref.split
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        try:
            meta["groundtruth"] = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            meta["groundtruth_error"] = f"{sidecar.name}: {e}"
    fields: dict[str, Any] = {"frames.npy": np.stack(crops), "mel.npy": mel, "landmarks.npy": landmarks}
    if cfg.keep_audio:
        fields["audio.npy"] = np.ascontiguousarray(audio[: t * SAMPLES_PER_FRAME], dtype=np.float32)
        meta["audio_samples"] = int(fields["audio.npy"].size)
    fields["json"] = meta
    return fields


def _sidecar_landmarks(path: Path, mode: str) -> list[np.ndarray] | None:
    """Exact per-frame 68-point landmarks from a SynthTalk sidecar (``<clip>.json``), if wanted."""
    if mode == "detect":
        return None
    sidecar = path.with_suffix(".json")
    try:
        frames = json.loads(sidecar.read_text(encoding="utf-8"))["frames"]
        return [np.asarray(f["landmarks"], np.float64).reshape(68, 2) for f in frames]
    except (OSError, ValueError, KeyError, TypeError) as e:
        if mode == "sidecar":
            raise SkipClip("no_face", f"{sidecar}: no per-frame landmarks ({e}); use --landmarks detect") from None
        return None


# ------------------------------------------------------------------------------------ one shard
def shard_paths(dst: Path, index: int) -> tuple[Path, Path, Path]:
    """``(tar, partial tar, sidecar json)`` of shard ``index`` under ``dst/shards``."""
    base = dst / "shards" / f"shard-{index:06d}"
    return base.with_suffix(".tar"), base.with_suffix(".tar.partial"), base.with_suffix(".json")


def write_shard(
    dst: Path, index: int, samples: Sequence[tuple[str, dict[str, Any], dict[str, Any]]],
    skipped: Sequence[dict[str, Any]], header: dict[str, Any],
) -> dict[str, Any]:
    """Write samples ``(key, fields, clip entry)`` atomically; returns the sidecar (written before the rename)."""
    tar, partial, side = shard_paths(dst, index)
    clips = []
    with ShardWriter(partial) as writer:
        for key, fields, entry in samples:
            writer.add(key, fields)
            clips.append({**entry, "members": {ext: list(v) for ext, v in writer.index[key].items()}})
    sidecar = {**header, "shard": tar.name, "bytes": partial.stat().st_size, "clips": clips, "skipped": list(skipped)}
    atomic_write_text(side, json.dumps(sidecar, sort_keys=True, indent=1) + "\n", fsync=True)
    os.replace(partial, tar)
    return sidecar


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
def write_dataset_json(dst: Path, sidecars: Sequence[dict[str, Any]], info: dict[str, Any]) -> dict[str, Any]:
    """``dataset.json`` + ``skipped.jsonl`` from the shard sidecars (in shard order); returns the dataset dict."""
    labels = sorted({c["label"] for s in sidecars for c in s["clips"]})
    frames = sum(c["num_frames"] for s in sidecars for c in s["clips"])
    skipped = [{**k, "shard": s["shard"]} for s in sidecars for k in s["skipped"]]
    reasons = Counter(k["reason"] for k in skipped)
    clips = sum(len(s["clips"]) for s in sidecars)
    dataset = {
        **info,
        "version": FORMAT_VERSION,
        "created_by": f"pcavs {__version__}",
        "format": "webdataset",
        "crop": CROP_NAME,
        "fps": FPS,
        "sample_rate": SAMPLE_RATE,
        # the mel front-end and frame <-> window pairing the stored mel rows follow (checked on load)
        "audio": dataclasses.asdict(DEFAULT_AUDIO),
        "labels": labels,
        "counts": {
            "discovered": clips + len(skipped),
            "clips": clips,
            "frames": frames,
            "seconds": round(frames / FPS, 3),
            "skipped": dict(sorted(reasons.items())),
        },
        "shards": [
            {"path": f"shards/{s['shard']}", "index": f"shards/{Path(s['shard']).stem}.json",
             "clips": len(s["clips"]), "frames": sum(c["num_frames"] for c in s["clips"])}
            for s in sidecars
        ],
    }
    atomic_write_text(dst / "skipped.jsonl", "".join(json.dumps(k, sort_keys=True) + "\n" for k in skipped), fsync=True)
    atomic_write_text(dst / "dataset.json", json.dumps(dataset, sort_keys=True, indent=1) + "\n", fsync=True)
    return dataset


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
