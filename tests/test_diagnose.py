"""The code diagnostics: ridge R^2 is right on known data; probe and fit run on a tiny dataset."""

from __future__ import annotations

import pytest
import torch

from pcavs.config import preset
from pcavs.data.synthetic import write_synthetic_dataset
from pcavs.model import PCAVS
from pcavs.train.diagnose import _batches, copy_l1, fit, probe, ridge_r2


def test_ridge_r2_separates_a_linear_relation_from_noise():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 20, generator=g)
    y = x @ torch.randn(20, 6, generator=g) + 0.01 * torch.randn(400, 6, generator=g)
    assert ridge_r2(x, y) > 0.99
    assert ridge_r2(torch.randn(400, 20, generator=g), y) < 0.1
    with pytest.raises(ValueError, match="rows"):
        ridge_r2(x[:1], y[:1])


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return str(write_synthetic_dataset(tmp_path_factory.mktemp("diag"), num_clips=8, frames=20, size=32))


def test_probe_and_fit_on_a_tiny_dataset(tiny_data):
    torch.manual_seed(0)
    model = PCAVS(preset("tiny"))
    result = probe(model, _batches(tiny_data, 8, seed=1), num_batches=4)
    assert set(result) == {"feature", "pose_code", "mouth_style", "pose_code_std"}
    assert all(torch.isfinite(torch.tensor(v)) for v in result.values())
    losses = fit(model, _batches(tiny_data, 4, seed=1), "landmarks", steps=3, log_every=0)
    assert len(losses) == 3 and all(0 < v < 2 for v in losses)
    assert 0 < copy_l1(_batches(tiny_data, 4, seed=1), num_batches=2) < 2
    with pytest.raises(ValueError, match="'landmarks' or 'zero'"):
        fit(model, _batches(tiny_data, 4, seed=1), "exact", steps=1)


def test_a_dataset_without_landmarks_is_refused(tmp_path):
    root = str(write_synthetic_dataset(tmp_path, num_clips=4, frames=20, size=32, landmarks=False))
    with pytest.raises(ValueError, match="pcavs preprocess"):
        next(_batches(root, 4, seed=0))
