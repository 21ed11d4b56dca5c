"""The SynthTalk benchmark: held-out triples, exact targets, baselines, scores and the script's report."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pcavs.checkpoint import save_weights
from pcavs.config import preset
from pcavs.face.align import transform_points
from pcavs.model import PCAVS
from pcavs.synth.benchmark import (
    TEST_SEED_BASE,
    Estimator,
    _align,
    _render_target,
    gaussian_blur,
    generate_case,
    make_triples,
    mouth_region_error,
    person,
    photo_pose,
    render_case,
    roll_blind_target,
    roll_motion_target,
    score,
    shuffled_target,
    speech_order,
)
from pcavs.synth.motion import eval_angles
from pcavs.synth.rollmeter import CropRollEstimator
from pcavs.synth.speech import have_espeak, mouth_track

needs_espeak = pytest.mark.skipif(not have_espeak(), reason="espeak-ng not installed (apt-get install espeak-ng)")


def test_triples_are_three_distinct_held_out_people():
    triples = make_triples(20)
    assert len(triples) == 20
    for t in triples:
        assert len({t.identity, t.pose, t.speech}) == 3
        assert min(t.identity, t.pose, t.speech) >= TEST_SEED_BASE  # never a training seed
    assert len({t.identity for t in triples}) == 20
    assert make_triples(20) == triples and make_triples(20, seed=1) != triples


def test_mouth_region_error_counts_only_the_box():
    target = np.zeros((2, 16, 16, 3), np.uint8)
    gen = target.copy()
    gen[:, :8] = 40  # the top half is wrong
    boxes = np.array([[4, 10, 12, 14], [0, 0, 4, 4]])  # frame 0: bottom (right), frame 1: top (wrong)
    assert mouth_region_error(gen, target, boxes) == pytest.approx(20.0)


def test_gaussian_blur_keeps_flat_images_and_spreads_a_point():
    flat = np.full((1, 9, 9, 3), 77, np.uint8)
    assert np.array_equal(gaussian_blur(flat, 1.0), flat)
    point = np.zeros((1, 9, 9, 3), np.uint8)
    point[0, 4, 4] = 255
    out = gaussian_blur(point, 1.0).astype(int)
    assert 38 <= out[0, 4, 4, 0] <= 43  # 255 / (2 pi sigma^2) for a unit Gaussian
    assert out[0, 4, 5, 0] == out[0, 5, 4, 0] == out[0, 3, 4, 0] and 0 < out[0, 4, 6, 0] < out[0, 4, 5, 0]
    assert abs(out.sum() - 255 * 3) < 60  # mass kept, up to rounding


@pytest.fixture(scope="module")
def case():
    return render_case(make_triples(1)[0], size=32, seconds=0.6)


@needs_espeak
def test_case_shapes_and_exact_target_scores_perfectly(case):
    t = len(case.target)
    assert t == 15 and case.target.shape == (t, 32, 32, 3) and case.pose_frames.shape == (t, 32, 32, 3)
    assert case.identity.shape == (32, 32, 3) and case.pose.shape == (t, 3) and case.mouth_open.shape == (t,)
    x0, y0, x1, y1 = case.mouth_boxes.T
    assert (x1 > x0).all() and (y1 > y0).all() and case.mouth_boxes.max() <= 32
    assert not np.array_equal(case.identity, case.target[0])  # A's photo is in A's own pose
    s = score(case.target, case, Estimator(32))
    assert s["ssim"] == pytest.approx(1.0) and s["psnr"] == 100.0 and s["mouth_l1"] == 0.0


@needs_espeak
def test_baselines(case):
    torch.manual_seed(0)
    model = PCAVS(preset("tiny")).eval()
    copy = generate_case(model, case, "copy")
    assert (copy == case.identity[None]).all() and len(copy) == len(case.target)
    ours = generate_case(model, case, "model")
    assert ours.shape == case.target.shape
    assert np.array_equal(ours, generate_case(model, case, "model"))  # seeded noise: repeatable
    assert not np.array_equal(ours, generate_case(model, case, "shuffled_audio"))
    assert not np.array_equal(ours, generate_case(model, case, "still_pose"))


@needs_espeak
def test_script_writes_the_table_floor_and_checks(tmp_path: Path):
    spec = importlib.util.spec_from_file_location("synthtalk_bench", Path("benchmarks/synthtalk.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    torch.manual_seed(0)
    save_weights(PCAVS(preset("tiny")), tmp_path / "w")
    torch.save(Estimator(32).state_dict(), tmp_path / "est.pt")  # cached estimators: no training here
    torch.save(CropRollEstimator(32).state_dict(), tmp_path / "roll.pt")
    report = tmp_path / "r.json"
    args = ["--weights", str(tmp_path / "w"), "--triples", "1", "--seconds", "0.4",
            "--estimator", str(tmp_path / "est.pt"), "--roll-estimator", str(tmp_path / "roll.pt"),
            "--json", str(report)]  # fmt: skip
    assert bench.main(args) == 0
    r = json.loads(report.read_text())
    assert set(r["table"]) == {"model", "copy", "shuffled_audio", "still_pose"}
    assert set(r["estimator_floor"]) == {"pose_err", "mouth_open_err"}
    refs = r["references"]
    assert set(refs) == {"exact target", "target shuffled", "target blur 0.5px", "shuffled blur 0.5px",
                         "target blur 1px", "shuffled blur 1px", "target photo roll", "target roll motion"}
    assert refs["exact target"]["mouth_l1"] == 0.0 and refs["exact target"]["ssim"] == pytest.approx(1.0)
    assert refs["target shuffled"]["mouth_l1"] > 0
    assert 0 < refs["target blur 0.5px"]["mouth_l1"] < refs["target blur 1px"]["mouth_l1"]  # more blur, more error
    floors = r["perfect_answer_checks"]
    assert floors["pose_err_ratio (exact, photo's roll)"] == pytest.approx(
        refs["target photo roll"]["pose_err"] / r["table"]["still_pose"]["pose_err"])
    assert floors["mouth_open_ratio (exact target vs exact shuffled)"] == pytest.approx(
        refs["exact target"]["mouth_open_err"] / refs["target shuffled"]["mouth_open_err"])
    assert r["estimator_floor"]["pose_err"] == refs["exact target"]["pose_err"]
    assert set(r["table"]["model"]) >= {"yaw_err", "pitch_err", "roll_err", "roll_motion_err"}
    assert set(r["checks"]) == {"ssim_gain_over_copy", "mouth_open_ratio_true_vs_shuffled", "pose_err_ratio_vs_still",
                                "yaw_err_ratio_vs_still", "pitch_err_ratio_vs_still", "roll_err_ratio_vs_still",
                                "roll_motion_err_ratio_vs_still", "roll_motion_vs_target_ratio_vs_still",
                                "pose_err_roll_motion_ratio_vs_still"}
    still = r["table"]["still_pose"]
    assert r["checks"]["roll_motion_err_ratio_vs_still"] == pytest.approx(
        r["table"]["model"]["roll_motion_err"] / still["roll_motion_err"])
    assert r["targets"]["ssim_gain_over_copy"] == [">=", 0.12]
    assert r["targets"]["pose_err_ratio_vs_still"] == ["<=", 0.4]
    assert set(r["met"]) == set(r["checks"])
    assert r["checks"]["ssim_gain_over_copy"] == pytest.approx(r["table"]["model"]["ssim"] - r["table"]["copy"]["ssim"])


@needs_espeak
def test_shuffled_target_moves_only_the_mouth_in_the_baselines_order(case):
    triple, n = make_triples(1)[0], len(case.target)
    seed = next(s for s in range(100) if (speech_order(n, s) == np.arange(n)).any())  # a frame stays put
    shuffled = shuffled_target(triple, case, seed=seed)
    assert shuffled.shape == case.target.shape
    mt = mouth_track(np.asarray(case.audio, np.float32), n, blink_seed=triple.pose)
    order = speech_order(n, seed)
    same = (mt.open[order] == mt.open) & (mt.width[order] == mt.width)
    assert same.any() and not same.all()
    # same mouth (and the same pose and blink): almost the same crop (the clip crop's similarity follows
    # the clip-mean mouth, so every crop moves a little), else a different mouth
    diff = np.abs(shuffled.astype(float) - case.target).reshape(n, -1).mean(1)
    assert diff[same].max() < 1.0 and diff[~same].mean() > 2 * diff[same].mean()


@needs_espeak
def test_clip_crop_shows_the_drivers_roll(case):
    """The benchmark crops clips as inference does, so B's roll reaches the aligned crops (the v1
    per-frame crop kept the aligned landmarks within 0.3 px of a roll-free twin's)."""
    triple, n = make_triples(1)[0], len(case.target)
    blind = roll_blind_target(triple, case)
    assert blind.shape == case.target.shape
    roll = float(photo_pose(triple).roll[0])
    truth, blind_r = _render_target(triple, n, case.audio), _render_target(triple, n, case.audio, roll=roll)
    assert {g["roll"] for g in blind_r.ground_truth} == {roll} and len({g["roll"] for g in truth.ground_truth}) == n
    _, mt = _align(truth.frames, truth.ground_truth, 64)
    gts = truth.ground_truth
    lm = np.stack([transform_points(m, np.asarray(g["landmarks"])) for m, g in zip(mt, gts, strict=True)])
    d = lm[:, 42:48].mean(1) - lm[:, 36:42].mean(1)
    eye_angle = np.degrees(np.arctan2(d[:, 1], d[:, 0]))
    true_roll = np.array([eval_angles(g)[2] for g in truth.ground_truth])  # clockwise in the image
    x, y = true_roll - true_roll.mean(), eye_angle - eye_angle.mean()
    assert np.ptp(true_roll) > 3 and (x * y).sum() / (x * x).sum() > 0.8


@needs_espeak
def test_roll_motion_target_moves_bs_roll_onto_the_photos(case):
    """The 'roll motion' reference keeps B's roll about its clip mean and takes the mean from the photo;
    its clip crops show the same in-clip roll as the exact target's (the crop levels the mean)."""
    triple, n = make_triples(1)[0], len(case.target)
    motion = roll_motion_target(triple, case)
    assert motion.shape == case.target.shape and not np.array_equal(motion, case.target)
    b_roll = _render_target(triple, n, case.audio)
    roll = np.array([g["roll"] for g in b_roll.ground_truth])
    shifted = roll - roll.mean() + float(photo_pose(triple).roll[0])
    r = _render_target(triple, n, case.audio, roll=shifted)
    assert np.allclose([g["roll"] for g in r.ground_truth], shifted)
    # the face inside the crop: the clip crop removes the clip's mean roll, so the face pixels agree far
    # better with the exact target than the roll-blind reference does
    k = motion.shape[1] // 4
    face = (slice(None), slice(k, 3 * k), slice(k, 3 * k))
    blind = roll_blind_target(triple, case)
    err = np.abs(motion[face].astype(float) - case.target[face]).mean()
    assert err < 0.5 * np.abs(blind[face].astype(float) - case.target[face]).mean()


def test_score_separates_a_constant_pose_offset_from_motion(case):
    """An output whose angles are the truth plus a constant has absolute errors, no motion error."""

    class Offset:
        def predict(self, crops):
            out = np.zeros((len(crops), 4), np.float32)
            out[:, :3] = case.pose + np.array([1.0, -2.0, 4.0])
            out[:, 3] = case.mouth_open
            return out

    s = score(case.target, case, Offset())
    assert (s["yaw_err"], s["pitch_err"], s["roll_err"]) == pytest.approx((1.0, 2.0, 4.0), abs=1e-4)
    assert max(s["yaw_motion_err"], s["pitch_motion_err"], s["roll_motion_err"]) < 1e-4
    assert max(s["yaw_motion_vs_target"], s["roll_motion_vs_target"]) < 1e-4  # the target reads the same
    assert s["pose_err"] == pytest.approx(7 / 3, abs=1e-4) and s["mouth_open_err"] < 1e-6


def test_synthtalk_angles_are_converted_to_the_eval_convention():
    """One sign convention: renderer angles pass through eval_angles to match pcavs.eval.headpose."""
    from pcavs.eval.headpose import head_pose_from_landmarks
    from pcavs.synth.motion import PoseTrack
    from pcavs.synth.render import render

    for axis in range(3):
        values = [0.0, 0.0, 0.0]
        values[axis] = 20.0
        out = render(person(1), PoseTrack.constant(1, yaw=values[0], pitch=values[1], roll=values[2]),
                     np.zeros(16000), 128)
        gt = out.ground_truth[0]
        measured = head_pose_from_landmarks(np.asarray(gt["landmarks"]), 128)[axis]
        assert np.sign(measured) == np.sign(eval_angles(gt)[axis]) and abs(measured) > 1.5
