"""The SynthTalk crop-roll estimator: its target's sign, and its accuracy on exact targets (pinned)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pcavs.face.align import transform_points
from pcavs.synth.benchmark import Estimator, _align, make_triples, person, score
from pcavs.synth.motion import eval_angles, sample_pose
from pcavs.synth.render import render
from pcavs.synth.rollmeter import CropRollEstimator, crop_roll, roll_samples
from pcavs.synth.speech import MouthTrack

ESTIMATORS = Path("benchmarks/estimators")


def eye_line(lm: np.ndarray) -> np.ndarray:
    d = lm[..., 42:48, :].mean(-2) - lm[..., 36:42, :].mean(-2)
    return np.degrees(np.arctan2(d[..., 1], d[..., 0]))


def crop_landmarks(mats: list[np.ndarray], gts: list[dict]) -> np.ndarray:
    return np.stack([transform_points(m, np.asarray(g["landmarks"])) for m, g in zip(mats, gts, strict=True)])


def load(kind: type[Estimator], name: str) -> Estimator:
    net = kind(64)
    net.load_state_dict(torch.load(ESTIMATORS / name, weights_only=True))
    return net.eval()


def render_clips() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Exact targets of two benchmark triples (held-out people, benchmark head motion), clip-cropped
    at 64 px: (crops, true roll, crop landmarks), 2 s each, the mouth moving."""
    out = []
    rng = np.random.default_rng(0)
    for t in make_triples(2):
        n = 50
        mouth = MouthTrack(rng.uniform(0, 0.8, n), rng.uniform(0.3, 0.7, n), np.zeros(n))
        r = render(person(t.identity), sample_pose(t.pose, n), mouth, 128)
        crops, mats = _align(r.frames, r.ground_truth, 64)
        roll = np.array([eval_angles(g)[2] for g in r.ground_truth])
        out.append((crops, roll, crop_landmarks(mats, r.ground_truth)))
    return out


@pytest.fixture(scope="module")
def clips() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    return render_clips()


def motion_err(reading: np.ndarray, truth: np.ndarray) -> float:
    return float(np.abs((reading - reading.mean()) - (truth - truth.mean())).mean())


def test_crop_roll_is_the_tilt_the_crop_shows():
    """Training targets follow the eye line of the crop (the headpose convention: clockwise > 0)."""
    crops, targets = roll_samples(6, 64, seed=5)
    assert crops.shape == (6, 64, 64, 3) and targets.shape == (6, 4)
    assert np.abs(targets[:, 2]).max() > 3  # the crop tilts the head
    r = render(person(1), sample_pose(3, 8), MouthTrack.closed(8), 128)
    crops, mats = _align(r.frames, r.ground_truth, 64)
    cr = np.array([crop_roll(g, m) for g, m in zip(r.ground_truth, mats, strict=True)])
    assert np.abs(cr - eye_line(crop_landmarks(mats, r.ground_truth))).max() < 1.5
    roll = np.array([eval_angles(g)[2] for g in r.ground_truth])
    assert np.allclose(cr - cr.mean(), roll - roll.mean())  # one crop rotation per clip


def test_crop_roll_estimator_reads_roll_motion_finely(clips):
    """On exact targets the shipped crop-roll estimator reads roll motion to ~0.3 deg; the pose
    estimator (absolute roll) reads it to ~1.9 deg, as large as the motion itself."""
    fine = load(CropRollEstimator, "synthtalk-roll-64.pt")
    coarse = load(Estimator, "synthtalk-clip-64.pt")
    errs, coarse_errs, sizes = [], [], []
    for crops, roll, _ in clips:
        errs.append(motion_err(fine.predict(crops)[:, 2], roll))
        coarse_errs.append(motion_err(coarse.predict(crops)[:, 2], roll))
        sizes.append(np.abs(roll - roll.mean()).mean())
    assert min(sizes) > 0.8
    assert np.mean(errs) < 0.45 and max(errs) < 0.6
    assert np.mean(errs) < 0.3 * np.mean(coarse_errs)


def test_score_reads_roll_motion_with_the_roll_reader(clips):
    """With a roll reader, the roll motion columns are its; ``*_coarse`` keep the pose estimator's."""
    crops, roll, _ = clips[0]

    class Reader:
        def __init__(self, roll_reading: np.ndarray) -> None:
            self.roll = roll_reading

        def predict(self, frames: np.ndarray) -> np.ndarray:
            out = np.zeros((len(frames), 4), np.float32)
            out[:, 2] = self.roll
            return out

    from pcavs.synth.benchmark import Case

    n = len(crops)
    pose = np.zeros((n, 3))
    pose[:, 2] = roll
    case = Case(identity=crops[0], pose_frames=crops, target=crops, audio=np.zeros(1600), pose=pose,
                mouth_open=np.zeros(n), mouth_boxes=np.tile([20, 36, 44, 48], (n, 1)))  # fmt: skip
    s = score(crops, case, Reader(np.zeros(n)), Reader(roll + 7.0))  # the crop's own tilt: a constant
    assert s["roll_motion_err"] < 1e-4 and s["roll_motion_vs_target"] < 1e-4
    assert s["roll_motion_err_coarse"] == pytest.approx(np.abs(roll - roll.mean()).mean(), abs=1e-4)
    plain = score(crops, case, Reader(np.zeros(n)))
    assert plain["roll_motion_err"] == plain["roll_motion_err_coarse"] == s["roll_motion_err_coarse"]
