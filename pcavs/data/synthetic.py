"""A small dataset in the preprocess format, written without videos or face detection (for tests and smoke runs).

Not SynthTalk (:mod:`pcavs.synth`, rendered talking-head videos for ``pcavs preprocess``): these are the
shards themselves, with frames and mel rows simple enough that a test can predict every value.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pcavs.audio import DEFAULT_AUDIO, rows_for_frames
from pcavs.data.store import FPS, SAMPLE_RATE, write_dataset_json, write_shard

__all__ = ["write_synthetic_dataset"]


def write_synthetic_dataset(dst: str | os.PathLike[str], num_clips: int = 8, frames: int = 20, size: int = 32,
                            labels: int | Sequence[str] = 2, clips_per_shard: int = 4, seed: int = 0,
                            landmarks: bool = True) -> Path:
    """Write a small dataset in the preprocess format without videos or face detection (for tests).

    Clip ``i`` has label ``i % len(labels)``; frame ``f`` shows a clip-coloured background with a
    bright square whose position encodes ``f``; mel row ``r`` is ``0.5 + 0.4*sin(r/7 + i + band/9)``.
    """
    dst_p = Path(dst)
    (dst_p / "shards").mkdir(parents=True, exist_ok=True)
    names = [f"label{i:02d}" for i in range(labels)] if isinstance(labels, int) else list(labels)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    base_lm = rng.uniform(0.25 * size, 0.75 * size, (68, 2))
    sidecars = []
    header = {"settings": {"size": size, "synthetic": True}, "layout": "synthetic", "label_kind": "identity"}
    for s0 in range(0, num_clips, clips_per_shard):
        samples = []
        for i in range(s0, min(s0 + clips_per_shard, num_clips)):
            colour = rng.integers(40, 200, 3)
            img = np.broadcast_to(colour, (frames, size, size, 3)).copy()
            img += rng.integers(0, 30, (1, size, size, 1))  # fixed per-clip texture
            side = max(2, size // 6)
            for f in range(frames):
                y0, x0 = (3 * f) % (size - side), (5 * f + 7 * i) % (size - side)
                img[f, y0 : y0 + side, x0 : x0 + side] = 250
            rows = rows_for_frames(frames)
            mel = 0.5 + 0.4 * np.sin(np.arange(rows)[:, None] / 7.0 + i + np.arange(DEFAULT_AUDIO.n_mels)[None] / 9.0)
            key, label = f"synth__{i:05d}", names[i % len(names)]
            meta = {"key": key, "label": label, "label_kind": "identity", "source": f"synthetic/{i:05d}.mp4",
                    "num_frames": frames, "fps": FPS, "size": size, "sample_rate": SAMPLE_RATE, "mel_rows": rows}
            fields: dict[str, Any] = {"frames.npy": img.astype(np.uint8), "mel.npy": mel.astype(np.float32)}
            if landmarks:
                drift = np.arange(frames)[:, None, None] * np.array([0.1, -0.05])
                fields["landmarks.npy"] = (base_lm[None] + drift).astype(np.float16)
            fields["json"] = meta
            samples.append((key, fields, {"key": key, "source": meta["source"], "label": label, "num_frames": frames}))
        sidecars.append(write_shard(dst_p, s0 // clips_per_shard, samples, [], header))
    write_dataset_json(dst_p, sidecars, {"layout": "synthetic", "label_kind": "identity", "size": size,
                                         "keep_audio": False, "settings": header["settings"]})
    return dst_p
