"""The code diagnostics: ridge R^2 is right on known data; probe and fit run on a tiny dataset; the angle
probe separates a per-clip offset from motion and needs ground truth."""

from __future__ import annotations

import pytest
import torch

from pcavs.config import preset
from pcavs.data.synthetic import write_synthetic_dataset
from pcavs.losses.landmarks import heatmap_points, landmark_heatmaps, soft_points
from pcavs.model import PCAVS
from pcavs.train.diagnose import (
    _batches,
    angle_errors,
    angle_probe,
    collect_angles,
    copy_l1,
    fit,
    probe,
    ridge_predict,
    ridge_r2,
)


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


def test_angle_errors_split_a_per_clip_offset_from_motion():
    g = torch.Generator().manual_seed(0)
    clip = torch.arange(20).repeat_interleave(10)
    offset = 5 * torch.randn(20, 3, generator=g)
    truth = offset[clip] + torch.randn(200, 3, generator=g)
    rows = torch.ones(200, dtype=torch.bool)
    # a read-out that sees the motion but not the clip's offset (a crop levelled per clip)
    e = angle_errors(truth - offset[clip], truth, clip, rows)
    assert e["motion"] == pytest.approx([0, 0, 0], abs=1e-5)
    assert e["offset"] == pytest.approx(offset.abs().mean(0).tolist(), rel=1e-6)
    assert e["absolute"] == pytest.approx(e["offset"], rel=1e-6)
    # and one that sees the offset but not the motion
    e = angle_errors(offset[clip].clone(), truth, clip, rows)
    assert max(e["offset"]) < 0.5 < min(e["motion"])


def test_ridge_predict_reads_a_linear_relation_on_unfitted_rows():
    g = torch.Generator().manual_seed(1)
    x = 100 * torch.randn(300, 12, generator=g)  # any scale: the features are standardised
    y = x @ torch.randn(12, 3, generator=g) / 100
    fit_rows = torch.arange(300) < 200
    assert (ridge_predict(x, y, fit_rows, ridge=1e-6)[~fit_rows] - y[~fit_rows]).abs().max() < 1e-3


def test_soft_points_find_a_landmark_between_heatmap_cells():
    points = torch.tensor([[[10.3, 21.7], [33.9, 40.2]]])
    heat = landmark_heatmaps(points, 64, 16)
    assert (soft_points(heat, 64) - points).abs().max() < 0.1
    assert (heatmap_points(heat, 64) - points).abs().max() > 1  # the arg-max snaps to the 4-px grid


def test_angle_probe_ranks_read_outs_and_splits_by_identity():
    g = torch.Generator().manual_seed(2)
    n_clips, per_clip = 40, 10
    clip = torch.arange(n_clips).repeat_interleave(per_clip)
    angles = (8 * torch.randn(n_clips, 3, generator=g))[clip] + 3 * torch.randn(len(clip), 3, generator=g)
    data = {
        "angles": angles, "clip": clip, "label": clip // 2,  # two clips per identity
        "pose_code": torch.cat([angles, torch.randn(len(clip), 9, generator=g)], 1),
        "fan_points": angles + 2 * torch.randn(len(clip), 3, generator=g),
        "landmarks": torch.randn(len(clip), 6, generator=g),  # carries nothing
    }
    r = angle_probe(data)
    assert max(r["pose_code"]["absolute"]) < 0.1
    assert max(r["pose_code"]["absolute"]) < min(r["fan_points"]["absolute"]) < min(r["mean only"]["absolute"])
    assert min(r["landmarks"]["absolute"]) > 0.8 * min(r["mean only"]["absolute"])
    with pytest.raises(ValueError, match="both sides"):
        angle_probe({**data, "label": torch.zeros_like(clip)})


def test_the_angle_probe_asks_for_synthtalk_ground_truth(tiny_data):
    with pytest.raises(ValueError, match="ground-truth angles.*pcavs synth"):
        collect_angles(PCAVS(preset("tiny")), tiny_data)
