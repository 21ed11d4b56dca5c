"""Reading a preprocessed dataset's index: ``dataset.json``, each shard's clips, and the format check.

The index is what :mod:`pcavs.data.store` wrote: ``dataset.json`` lists the shards, and each shard's
``.json`` sidecar lists its clips with the byte offsets of their members in the tar. A shard without a
usable sidecar (from another tool, or copied without it) is read from the tar's headers instead.
``root`` may be a local folder or a URL (see :func:`pcavs.data.shards.open_url`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pcavs.audio import DEFAULT_AUDIO
from pcavs.data.shards import ShardError, open_url, read_member, scan_shard
from pcavs.data.store import CROP_NAME, FORMAT_VERSION

__all__ = ["ClipInfo", "check_format", "load_index"]


@dataclass(frozen=True)
class ClipInfo:
    """One clip of the index: where its members are and what it is."""

    shard: str  # path or URL of the tar
    key: str
    num_frames: int
    label: int
    members: dict[str, tuple[int, int]]  # ext -> (data offset, size) in the tar
    split: str | None = None


def _join(root: str, rel: str) -> str:
    return f"{root.rstrip('/')}/{rel}" if "://" in root else str(Path(root) / rel)


def _read_json(url: str) -> Any:
    try:
        with open_url(url) as f:
            return json.loads(f.read().decode("utf-8"))
    except (ShardError, FileNotFoundError) as e:
        raise ShardError(f"{url}: not found ({e}); run `pcavs preprocess SRC DST` first and pass DST as root") from None
    except ValueError as e:
        raise ShardError(f"{url}: not valid JSON ({e}); rerun preprocessing") from None


def _shard_size(url: str) -> int | None:
    try:
        return os.path.getsize(url)
    except OSError:
        return None  # remote: trust the sidecar


def _shard_clips(root: str, entry: dict[str, Any]) -> list[dict[str, Any]]:
    tar = _join(root, entry["path"])
    side_rel = entry.get("index") or entry["path"][: -len(".tar")] + ".json"
    try:
        side = _read_json(_join(root, side_rel))
        size = _shard_size(tar)
        if size is None or side.get("bytes") == size:
            return side["clips"]
    except (ShardError, KeyError):
        pass
    # No usable sidecar (shards from another tool, or copied without it): read the tar itself.
    members = scan_shard(tar)
    clips = []
    with open_url(tar) as f:
        for key, m in members.items():
            meta = json.loads(read_member(f, *m["json"]))
            clips.append({"key": key, "label": meta["label"], "num_frames": meta["num_frames"],
                          "split": meta.get("split"), "members": m})
    return clips


def check_format(meta: dict[str, Any], root: str) -> None:
    """Refuse shards made with another crop or format: a model trained on them would not match inference."""
    version, crop = meta.get("version"), meta.get("crop")
    if version != FORMAT_VERSION or crop != CROP_NAME:
        raise ShardError(
            f"{root}: made with crop {crop!r} (format version {version}); this pcavs reads {CROP_NAME!r} "
            f"(version {FORMAT_VERSION}), the crop inference uses; rerun `pcavs preprocess SRC {root}` "
            "into an empty folder"
        )
    # shards made before dataset.json recorded it used the official constants, which never changed
    audio = meta.get("audio", dataclasses.asdict(DEFAULT_AUDIO))
    changed = sorted(k for k, v in dataclasses.asdict(DEFAULT_AUDIO).items() if audio.get(k) != v)
    if changed:
        raise ShardError(
            f"{root}: its mel rows were made with another audio front-end ({', '.join(changed)} differ from "
            "this pcavs's AudioConfig), so frames would be paired with the wrong speech; rerun "
            f"`pcavs preprocess SRC {root}` into an empty folder"
        )


def load_index(root: str | os.PathLike[str], split: str | None = None) -> tuple[dict[str, Any], list[ClipInfo]]:
    """``(dataset.json, clips in dataset order)``; the clip index used in samples is the list position."""
    root_s = os.fspath(root)
    meta = _read_json(_join(root_s, "dataset.json"))
    check_format(meta, root_s)
    labels = {name: i for i, name in enumerate(meta["labels"])}
    clips = []
    for entry in meta["shards"]:
        if not entry.get("clips"):
            continue
        for c in _shard_clips(root_s, entry):
            if split is not None and c.get("split") != split:
                continue
            members = {ext: (int(v[0]), int(v[1])) for ext, v in c["members"].items()}
            clips.append(ClipInfo(_join(root_s, entry["path"]), c["key"], int(c["num_frames"]), labels[c["label"]],
                                  members, c.get("split")))
    return meta, clips
