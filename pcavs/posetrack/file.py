"""The pose-track file: one ``.npz`` (NumPy's zip of arrays), version 1.

Arrays, one row per video frame at ``fps`` (``T`` frames):

============  ==============  =================================================================
key           shape, dtype    meaning
============  ==============  =================================================================
``time``      (T,) float64    presentation time of the frame in seconds (``index / fps``)
``landmarks`` (T, 68, 2) f32  iBUG-68 landmarks in source-frame pixels (x right, y down)
``matrix``    (T, 2, 3) f64   affine map from source-frame pixels to the ``crop_size`` crop
``align``     (T, 2, 3) f64   affine map from source-frame pixels to the official 224 alignment
                              frame (before the loader crop): crops of any size are made from it
``angles``    (T, 3) f32      yaw, pitch, roll in degrees (:mod:`pcavs.eval.headpose` convention:
                              yaw > 0 turns to image left, pitch > 0 nods down, roll > 0 is a
                              clockwise tilt as seen in the image)
``score``     (T,) f32        detector confidence; NaN where the frame had no detection
``filled``    (T,) bool       landmarks interpolated over a face-less gap (or held at an end)
``shot``      (T,) int32      shot index (a cut starts a new shot and a new crop similarity)
``frame``     (T,) int32      the source video's frame (read at ``fps``) this row was cropped from
``source``    (T,) int32      index into ``meta["sources"]`` (several after ``pcavs pose edit --concat``)
``meta``      () str          JSON: ``format`` ("pcavs-pose-track"), ``version`` (1), ``fps``,
                              ``crop_size``, ``crop`` (the crop policy's name), ``sources``
                              (video paths), ``width``, ``height``, ``created_by``; edits add
                              ``loop`` (pingpong | repeat | hold), ``amplitude``, ``mirror``,
                              ``start_from_photo`` and ``edits`` (what was done, in order)
``codes_H``   (T, P) f32      optional: pose codes of the model whose pose-encoder weights hash to
                              ``H`` (:func:`encoder_hash`, 16 hex digits); computed on demand for
                              other models, from the source video and ``matrix``
============  ==============  =================================================================

The crop is the official clip crop of :mod:`pcavs.face.clip`: it keeps the head's roll, zoom, turn and
nod within a shot and pins the mouth. Files are written atomically (a temporary name, then a rename).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pcavs import __version__
from pcavs.errors import UserError
from pcavs.fileio import atomic_path

__all__ = ["TRACK_FORMAT", "TRACK_VERSION", "PoseTrack", "TrackFileError", "encoder_hash", "load_track"]

TRACK_FORMAT = "pcavs-pose-track"
TRACK_VERSION = 1
_ARRAYS = {  # key: (trailing shape, dtype)
    "time": ((), np.float64),
    "landmarks": ((68, 2), np.float32),
    "matrix": ((2, 3), np.float64),
    "align": ((2, 3), np.float64),
    "angles": ((3,), np.float32),
    "score": ((), np.float32),
    "filled": ((), np.bool_),
    "shot": ((), np.int32),
    "frame": ((), np.int32),
    "source": ((), np.int32),
}


def encoder_hash(state: dict[str, Any]) -> str:
    """16 hex digits of SHA-256 over a pose encoder's state dict (names, shapes, dtypes and bytes)."""
    import hashlib

    import torch

    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name]
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().contiguous()
            h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


class TrackFileError(UserError, ValueError):
    """A pose-track file that cannot be used (missing, truncated, wrong version, missing keys)."""


@dataclass
class PoseTrack:
    """A head-motion track; see the module docstring for every field."""

    time: np.ndarray
    landmarks: np.ndarray
    matrix: np.ndarray
    align: np.ndarray
    angles: np.ndarray
    score: np.ndarray
    filled: np.ndarray
    shot: np.ndarray
    frame: np.ndarray
    source: np.ndarray
    meta: dict[str, Any]
    codes: dict[str, np.ndarray] = field(default_factory=dict)  #: encoder hash -> (T, pose_dim) codes

    def __post_init__(self) -> None:
        n = len(self.time)
        for key, (shape, dtype) in _ARRAYS.items():
            arr = np.asarray(getattr(self, key), dtype=dtype)
            if arr.shape != (n, *shape):
                raise TrackFileError(f"track array {key!r} has shape {arr.shape}, expected {(n, *shape)}")
            setattr(self, key, arr)
        for h, c in self.codes.items():
            c = np.asarray(c, dtype=np.float32)
            if c.ndim != 2 or len(c) != n:
                raise TrackFileError(f"track codes for model {h} have shape {c.shape}, expected ({n}, pose_dim)")
            self.codes[h] = c

    def __len__(self) -> int:
        return len(self.time)

    @property
    def fps(self) -> float:
        return float(self.meta["fps"])

    @property
    def name(self) -> str:
        """The source video(s), for messages."""
        return ", ".join(map(str, self.meta.get("sources", ["pose track"])))

    def select(self, rows: np.ndarray) -> PoseTrack:
        """A track of the given rows (any order, repeats allowed); cached codes follow the rows."""
        idx = np.asarray(rows, dtype=np.int64)
        return PoseTrack(**{k: getattr(self, k)[idx] for k in _ARRAYS}, meta=dict(self.meta),
                         codes={h: c[idx] for h, c in self.codes.items()})

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the ``.npz`` atomically; returns the path."""
        p = Path(path)
        if p.suffix != ".npz":
            raise TrackFileError(f"{p}: a pose track is an .npz file; name it e.g. {p.with_suffix('.npz').name}")
        meta = {"format": TRACK_FORMAT, "version": TRACK_VERSION, "created_by": f"pcavs {__version__}", **self.meta}
        with atomic_path(p) as tmp, open(tmp, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta, sort_keys=True)),
                     **{k: getattr(self, k) for k in _ARRAYS}, **{f"codes_{h}": c for h, c in self.codes.items()})
        return p


def load_track(path: str | os.PathLike[str]) -> PoseTrack:
    """Read and check a pose-track file; :class:`TrackFileError` says what is wrong and what to do."""
    p = Path(path)
    redo = f"extract it again with `pcavs pose extract VIDEO -o {p.name}`"
    if not p.is_file():
        raise TrackFileError(f"{p}: no such pose-track file")
    try:
        with np.load(p, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise TrackFileError(f"{p}: not a readable pose-track file (truncated or not an .npz: {e}); {redo}") from None
    if "meta" not in data:
        raise TrackFileError(f"{p}: has no 'meta' entry, so it is not a pcavs pose track; {redo}")
    try:
        meta = json.loads(str(data.pop("meta")))
    except ValueError as e:
        raise TrackFileError(f"{p}: its 'meta' entry is not JSON ({e}); {redo}") from None
    if not isinstance(meta, dict) or meta.get("format") != TRACK_FORMAT:
        raise TrackFileError(f"{p}: format {meta.get('format') if isinstance(meta, dict) else meta!r}, "
                             f"expected {TRACK_FORMAT!r}; {redo}")
    if meta.get("version") != TRACK_VERSION:
        raise TrackFileError(f"{p}: track format version {meta.get('version')!r}; this pcavs reads version "
                             f"{TRACK_VERSION}; {redo}")
    missing = sorted(set(_ARRAYS) - set(data))
    if missing:
        raise TrackFileError(f"{p}: missing arrays {', '.join(missing)}; {redo}")
    for key in ("fps", "crop_size", "sources"):
        if key not in meta:
            raise TrackFileError(f"{p}: 'meta' lacks {key!r}; {redo}")
    codes = {k[len("codes_"):]: v for k, v in data.items() if k.startswith("codes_")}
    try:
        return PoseTrack(**{k: data[k] for k in _ARRAYS}, meta=meta, codes=codes)
    except TrackFileError as e:
        raise TrackFileError(f"{p}: {e}; {redo}") from None
