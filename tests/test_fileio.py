"""Atomic writes and strict JSON (pcavs.fileio): no partial file under a final name, no NaN in JSON."""

from __future__ import annotations

import json
import math
import os
import stat

import numpy as np
import pytest

from pcavs.fileio import atomic_path, atomic_write_text, json_safe, write_json


def test_atomic_path_replaces_on_success_and_keeps_the_old_file_on_failure(tmp_path):
    out = tmp_path / "a.txt"
    atomic_write_text(out, "old")
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".a.txt.") and tmp.name.endswith(".tmp")
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert out.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    with atomic_path(out, suffix=".png") as tmp:
        assert tmp.suffix == ".png"
        tmp.write_text("new")
    assert out.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_atomic_outputs_get_a_plain_files_mode_not_mkstemps_0600(tmp_path):
    mask = os.umask(0o022)
    os.umask(mask)
    atomic_write_text(tmp_path / "w.json", "{}")
    assert stat.S_IMODE((tmp_path / "w.json").stat().st_mode) == 0o666 & ~mask  # 0644 under umask 022


def test_json_is_strict_nan_becomes_null_numpy_becomes_python(tmp_path):
    value = {"a": float("nan"), "b": [np.float32(1.5), np.inf, (np.int64(3), np.bool_(True))],
             "c": np.array([[1.0, np.nan]]), "d": "text"}  # fmt: skip
    assert json_safe(value) == {"a": None, "b": [1.5, None, [3, True]], "c": [[1.0, None]], "d": "text"}
    path = write_json(tmp_path / "x.json", value)
    text = path.read_text()
    assert "NaN" not in text and text.endswith("\n") and json.loads(text)["c"] == [[1.0, None]]
    assert not math.isnan(json.loads(text)["b"][0])
