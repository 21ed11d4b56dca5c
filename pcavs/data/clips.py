"""Preprocessing's clips: finding them under SRC, and turning one video into the fields of one shard sample.

Per clip: frames are streamed at 25 fps, the face is tracked (short gaps interpolated, cuts found), and
every frame is warped with the official clip crop (:mod:`pcavs.face.clip`, the same crop inference uses
for pose videos: one similarity per shot, the mouth pinned, so roll and zoom stay visible) to
``size`` x ``size``; the video is decoded twice (landmarks, then crops) so memory stays bounded. The
official mel-spectrogram is computed from the 16 kHz audio. Video and
audio are trimmed to a common length of ``T = min(video frames, num_video_frames(audio samples))``.

Stored mel rows: ``min(4*T + 8, rows of the whole clip)``, i.e. exactly what
``mel_windows(mel, range(T))`` reads, so the windows are identical to those of the untrimmed clip.
``audio.npy`` (``--keep-audio``) holds the first ``640*T`` samples.

A ``<clip>.json`` beside a clip (SynthTalk writes one) is stored as the sample's ``groundtruth``; its
per-frame landmarks replace detection with ``landmarks="auto"`` or ``"sidecar"``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pcavs.audio import melspectrogram, num_video_frames, rows_for_frames
from pcavs.config import ConfigError
from pcavs.data.store import CROP_NAME, FORMAT_VERSION, FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from pcavs.errors import UserError

__all__ = [
    "LABEL_KINDS",
    "ClipRef",
    "PreprocessConfig",
    "PreprocessError",
    "SkipClip",
    "discover_clips",
    "process_clip",
]

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

    sidecar = path.with_suffix(".json")
    doc, doc_error = _read_sidecar(sidecar)
    given = None if cfg.landmarks == "detect" else _sidecar_landmarks(sidecar, doc, doc_error, cfg.landmarks)
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
    if sidecar.is_file():
        if doc_error is None:
            meta["groundtruth"] = doc
        else:
            meta["groundtruth_error"] = f"{sidecar.name}: {doc_error}"
    fields: dict[str, Any] = {"frames.npy": np.stack(crops), "mel.npy": mel, "landmarks.npy": landmarks}
    if cfg.keep_audio:
        fields["audio.npy"] = np.ascontiguousarray(audio[: t * SAMPLES_PER_FRAME], dtype=np.float32)
        meta["audio_samples"] = int(fields["audio.npy"].size)
    fields["json"] = meta
    return fields


def _read_sidecar(sidecar: Path) -> tuple[Any, Exception | None]:
    """``(parsed <clip>.json, None)``, or ``(None, why not)`` (also when there is none): read once per clip
    for both its landmarks and its ``groundtruth``."""
    try:
        return json.loads(sidecar.read_text(encoding="utf-8")), None
    except (OSError, ValueError) as e:
        return None, e


def _sidecar_landmarks(sidecar: Path, doc: Any, error: Exception | None, mode: str) -> list[np.ndarray] | None:
    """Exact per-frame 68-point landmarks from a SynthTalk sidecar (``<clip>.json``), if it has them."""
    if error is None:
        try:
            return [np.asarray(f["landmarks"], np.float64).reshape(68, 2) for f in doc["frames"]]
        except (ValueError, KeyError, TypeError) as e:
            error = e
    if mode == "sidecar":
        raise SkipClip("no_face", f"{sidecar}: no per-frame landmarks ({error}); use --landmarks detect")
    return None
