"""The networks reproduce the official PC-AVS code's tensors (shared/reference vectors)."""

from __future__ import annotations

import json
import shutil

import pytest

from pcavs.cli import main
from pcavs.reference import TOLERANCE, verify


@pytest.fixture(scope="module")
def rows():
    from pathlib import Path

    return verify(Path(__file__).parent / "data" / "official-v0")


def test_every_stage_matches(rows):
    names = {r.name for r in rows}
    for required in ("audio.mel", "out.identity_vector", "out.pose_code", "out.image", "out.inference_driven"):
        assert required in names
    bad = [(r.name, r.max_abs_diff) for r in rows if not r.ok]
    assert bad == []
    assert max(r.max_abs_diff for r in rows) < TOLERANCE / 10  # comfortably inside, not marginal


def test_salt_is_read_from_the_files(tmp_path, reference_dir):
    """A different salt fills different weights: proof the check does not hard-code vector set 0."""
    for f in reference_dir.iterdir():
        shutil.copy(f, tmp_path / f.name)
    layout = json.loads((tmp_path / "state_dict_layout.json").read_text())
    layout["salt"] = "some-other-salt"
    (tmp_path / "state_dict_layout.json").write_text(json.dumps(layout))
    with pytest.raises(ValueError, match="salt"):
        verify(tmp_path)


def test_cli_rejects_a_folder_without_vectors(tmp_path, capsys):
    assert main(["verify-reference", str(tmp_path)]) == 2
    assert "reference.safetensors" in capsys.readouterr().err
