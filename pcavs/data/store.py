"""A preprocessed dataset on disk: the format it is in, and writing its shards and ``dataset.json``.

Layout of ``DST`` (what ``pcavs preprocess`` writes; :mod:`pcavs.data.index` reads it back)::

    shards/shard-000000.tar   samples {key}.frames.npy, .mel.npy, .landmarks.npy, [.audio.npy], .json
    shards/shard-000000.json  clips written (with member byte offsets) and clips skipped, with reasons
    dataset.json              labels, counts, shard list (written last: its presence means "complete")
    skipped.jsonl             one line per skipped clip: source, reason, detail

A shard is written to ``.tar.partial``, then its ``.json`` sidecar (fsynced), then renamed to ``.tar``:
a ``.tar`` without its sidecar was not made by this order, which is what resuming relies on.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pcavs import __version__
from pcavs.audio import DEFAULT_AUDIO
from pcavs.data.shards import ShardWriter
from pcavs.fileio import atomic_write_text, write_json

__all__ = [
    "CROP_NAME",
    "FORMAT_VERSION",
    "FPS",
    "SAMPLES_PER_FRAME",
    "SAMPLE_RATE",
    "shard_paths",
    "write_dataset_json",
    "write_shard",
]

#: v2: the official clip crop (one similarity per shot, the mouth pinned), so in-clip roll and zoom
#: stay visible; v1 levelled every frame (a per-frame similarity smoothed over 9 frames).
CROP_NAME = "pcavs-official-clip-v2"
FORMAT_VERSION = 2
# the stored frames and mel rows follow the audio front-end's timing (recorded in dataset.json)
FPS = DEFAULT_AUDIO.fps
SAMPLE_RATE = DEFAULT_AUDIO.sample_rate
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS


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
    write_json(side, sidecar, sort_keys=True, fsync=True)  # durable before the rename that makes the shard count
    os.replace(partial, tar)
    return sidecar


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
    write_json(dst / "dataset.json", dataset, sort_keys=True, fsync=True)
    return dataset
