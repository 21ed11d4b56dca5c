"""Files that are either absent, old, or complete: atomic writes, and JSON without NaN.

Every output pcavs writes goes through a temporary name in the same folder and a rename, so a crash,
a kill or bad input never leaves a partial file under the final name. Temporary names start with a
dot and contain ``.tmp`` (``.state.pt.k3j2.tmp``), so stale ones are easy to find and remove.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp makes its file 0600; a finished output gets the mode a plain open() would give it
_FILE_MODE = 0o666 & ~_umask()


@contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` when the block ends normally,
    remove it when the block raises. ``suffix`` ends the temporary name (``".png"``: writers that pick
    their format from the extension)."""
    final = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{suffix}", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, _FILE_MODE)
        os.replace(tmp_path, final)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str, fsync: bool = False) -> Path:
    """Write ``text`` (UTF-8) atomically; ``fsync`` also flushes it to disk before the rename (metadata
    that other files' validity hangs on, such as a shard's sidecar)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None and numpy scalars/arrays as Python numbers/lists
    (strict JSON has no NaN; most readers reject it)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


def write_json(path: str | os.PathLike[str], value: Any, indent: int | None = 1, sort_keys: bool = False,
               fsync: bool = False) -> Path:
    """Strict JSON (NaN as null), written atomically, ending with a newline (``fsync``: see
    :func:`atomic_write_text`)."""
    text = json.dumps(json_safe(value), indent=indent, sort_keys=sort_keys, allow_nan=False) + "\n"
    return atomic_write_text(path, text, fsync=fsync)


__all__ = ["atomic_path", "atomic_write_text", "json_safe", "write_json"]
