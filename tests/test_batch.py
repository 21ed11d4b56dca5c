"""pcavs batch: a manifest of videos, bad rows recorded with their reason, reruns skip finished outputs."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from pcavs.infer.batch import read_manifest

DEMO = Path(__file__).parents[1] / "pcavs" / "assets" / "demo"


def _wav(path: Path, seconds: float = 0.6) -> Path:
    t = np.arange(int(16000 * seconds)) / 16000
    pcm = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return path


def bad_manifest(tmp_path: Path) -> Path:
    """Two good rows, then a missing photo, corrupt audio, a face-less photo, an unwritable output, an unknown
    column and a line that is not JSON."""
    from PIL import Image

    _wav(tmp_path / "a.wav")
    (tmp_path / "bad.wav").write_bytes(np.random.default_rng(0).bytes(3000))
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(tmp_path / "noise.png")
    photo = str(DEMO / "identity.png")
    rows = [
        {"identity": photo, "audio": "a.wav", "output": "good.mp4"},
        {"identity": photo, "audio": "a.wav", "output": "seeded.mp4", "seed": 3, "noise": "const"},
        {"identity": "missing.png", "audio": "a.wav", "output": "missing.mp4"},
        {"identity": photo, "audio": "bad.wav", "output": "corrupt.mp4"},
        {"identity": "noise.png", "audio": "a.wav", "output": "noface.mp4"},
        {"identity": photo, "audio": "a.wav", "output": "taken.mp4"},  # a folder of that name is in OUTDIR
        {"identity": photo, "audio": "a.wav", "output": "x.mp4", "colour": "red"},
    ]
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    return path


def check_bad_rows(tmp_path: Path, engine_args: list[str]) -> None:
    """Every bad row recorded with its reason, the good rows done, a rerun skips them (on any engine)."""
    manifest = bad_manifest(tmp_path)
    out = tmp_path / "out"
    (out / "taken.mp4").mkdir(parents=True)
    cmd = [sys.executable, "-m", "pcavs", "batch", str(manifest), "-o", str(out), "--quiet", *engine_args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 1, r.stderr  # some rows failed
    assert "2 done, 0 skipped (already there), 6 failed" in r.stdout
    recs = {rec["row"]: rec for rec in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert recs[0]["status"] == recs[1]["status"] == "done" and recs[0]["frames"] == 15
    reasons = {i: recs[i].get("reason", "") for i in recs}
    assert "missing.png: file not found" in reasons[2]
    assert "bad.wav" in reasons[3]
    assert "no face" in reasons[4].lower()
    assert "taken.mp4" in reasons[5] and "folder" in reasons[5]
    assert "unknown column(s) colour" in reasons[6]
    assert "line 8 is not JSON" in reasons[7]
    assert sorted(p.name for p in out.iterdir()) == ["good.mp4", "results.jsonl", "seeded.mp4", "taken.mp4"]
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert "0 done, 2 skipped (already there), 6 failed" in again.stdout  # the failed rows were retried


@pytest.mark.parametrize("engine_args", [pytest.param([], id="in-process"),
                                         pytest.param(["--workers", "2"], id="pool", marks=pytest.mark.slow)])
def test_batch_records_every_bad_row_and_resumes(tmp_path: Path, engine_args: list[str]) -> None:
    check_bad_rows(tmp_path, engine_args)  # tests/test_ray.py runs it on Ray too


def test_csv_manifest_types_its_cells(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("identity,audio,output,seed,paste_back,mouth_weight\nphoto.png,a.wav,o.mp4,7,true,1.5\n"
                    "photo.png,a.wav,o.mp4,1,false,\n")
    first, second = read_manifest(path)
    assert first.error is None and first.options == {"seed": 7, "paste_back": True, "mouth_weight": 1.5}
    assert first.identity == str(tmp_path / "photo.png")
    assert "used by an earlier row" in second.error
