"""The SynthTalk benchmark's roll-motion reading: the head's roll as it shows inside a clip crop.

The clip crop (:mod:`pcavs.face.clip`) fits one similarity per clip, which levels the clip's mean eye
line, so only roll *motion* about the clip mean reaches a model, and only that can be scored. The
benchmark's pose estimator (:class:`~pcavs.synth.benchmark.Estimator`) is trained on *absolute* roll,
which a clip crop shows only in its context (neck, background): its per-frame roll noise (1.9 deg
about the clip mean on exact targets) is as large as the motion itself (about 2 deg).

:class:`CropRollEstimator` reads what the crop does show: the **crop roll**, the head's roll plus the
crop's own rotation (``roll + atan2(m[1, 0], m[0, 0])`` for the crop matrix ``m``; clockwise in the
image positive, the :mod:`pcavs.eval.headpose` convention). Within a clip the crop's rotation is one
constant, so the crop roll about its clip mean *is* the head's roll motion, exactly; no absolute angle
is needed. Trained on single renders cropped as if from a two-frame clip whose other frame is the
same face tilted, zoomed and shifted at random (so the crop tilts the head by up to 10 deg), with
mirrored and blurred copies (the models' outputs are softer than the renders). Read with the mirror
average (the mirror image has the opposite crop roll): 0.3 deg of roll-motion error on exact
targets, against 1.9 for the pose estimator.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pcavs.data.augment import gaussian_blur
from pcavs.face.align import clip_frame_matrices, compose, crop_matrix, warp_to_input
from pcavs.media import images_to_tensor

from .benchmark import RENDER_SIZE, Estimator, person, random_mouth, random_pose
from .motion import eval_angles
from .render import Renderer

ROLL_SEED_BASE = 8_500_000  # people of the training samples: apart from benchmark and estimator seeds
ANCHOR_TILT = 20.0  # deg: the other frame's tilt, +-; the clip crop takes half of it
TRAIN_CHUNKS, CHUNK, VAL_SEED = 6, 2000, 99  # 12000 training samples in six seeded chunks


def crop_roll(gt: dict, matrix: np.ndarray) -> float:
    """The head's roll as seen in a crop made by ``matrix`` (2x3, frame -> crop), degrees."""
    return float(eval_angles(gt)[2] + np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0])))


class CropRollEstimator(Estimator):
    """Aligned crop -> (yaw, pitch, crop roll) in degrees and mouth opening; the roll channel is the
    crop roll (see the module docstring), so only its motion within a clip means anything."""

    @torch.no_grad()
    def predict(self, crops: np.ndarray, batch: int = 64) -> np.ndarray:
        """The mean of the reading of each crop and the sign-corrected reading of its mirror image."""
        self.eval()
        out = []
        for i in range(0, len(crops), batch):
            x = images_to_tensor(crops[i : i + batch])
            mirrored = self(x.flip(-1)) * torch.tensor([-1.0, 1.0, -1.0, 1.0])
            out.append((self(x) + mirrored) / 2)
        return torch.cat(out).numpy()


def roll_samples(count: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random people, poses and mouths in crops tilted as a clip crop tilts them: (crops, targets).

    Targets: yaw, pitch, crop roll (:func:`crop_roll`), mouth opening. One render per sample: the
    clip's other frame is the same landmarks moved by a random similarity about the face.
    """
    rng = np.random.default_rng(seed)
    crops, targets = [], []
    per_person = 20
    for p in range(0, count, per_person):
        r = Renderer(person(ROLL_SEED_BASE + 1000 * seed + p), RENDER_SIZE)
        for _ in range(min(per_person, count - p)):
            pose = random_pose(rng)
            mouth, width = random_mouth(rng)
            frame, gt = r.render_frame(pose, mouth, width, float(rng.uniform() < 0.1))
            lm = np.asarray(gt["landmarks"], np.float64)
            centre = lm[[36, 45, 62]].mean(0)
            a, s = np.radians(rng.uniform(-ANCHOR_TILT, ANCHOR_TILT)), np.exp(rng.uniform(-0.05, 0.05))
            rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
            anchor = (lm - centre) @ rot.T + centre + rng.normal(0, 1.5, 2)
            frame_m = clip_frame_matrices([anchor, lm])[1]
            crops.append(warp_to_input(frame, frame_m, size))
            yaw, pitch, _ = eval_angles(gt)
            targets.append([yaw, pitch, crop_roll(gt, compose(crop_matrix(size), frame_m)), gt["mouth_open"]])
    return np.stack(crops), np.array(targets, np.float32)


def _mirror_and_blur(x: Tensor, y: Tensor, blur_p: float = 0.5) -> tuple[Tensor, Tensor]:
    """Half the batch mirrored (yaw and roll change sign), ``blur_p`` of it blurred by 0.2-1.6 px."""
    n = len(x)
    flip = torch.rand(n) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    y = y.clone()
    y[flip, 0] *= -1
    y[flip, 2] *= -1
    sigma = torch.where(torch.rand(n) < blur_p, torch.rand(n) * 1.4 + 0.2, torch.zeros(n))
    return gaussian_blur(x, sigma), y


def train_roll_estimator(size: int, epochs: int = 12, log=print) -> CropRollEstimator:
    """Fit the crop-roll estimator on freshly rendered ground truth: 13000 renders (6-10 min) and 12
    epochs (45 min on one core of a shared 2-core machine); the shipped ``synthtalk-roll-64.pt``."""
    parts = [roll_samples(CHUNK, size, seed) for seed in range(1, TRAIN_CHUNKS + 1)]
    x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    val_x, val_y = roll_samples(CHUNK // 2, size, VAL_SEED)
    torch.manual_seed(0)
    net = CropRollEstimator(size)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    steps_per_epoch = len(x) // 64
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=epochs * steps_per_epoch, pct_start=0.1)
    xt, yt = images_to_tensor(x), torch.from_numpy(y)
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(xt))
        for i in range(steps_per_epoch):
            j = perm[64 * i : 64 * (i + 1)]
            xb, yb = _mirror_and_blur(xt[j], yt[j])
            loss = F.smooth_l1_loss(net(xb) / net.scale, yb / net.scale, beta=0.02)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        err = np.abs(net.predict(val_x) - val_y).mean(0)
        log(f"crop-roll estimator epoch {epoch + 1}/{epochs}: val |err| yaw {err[0]:.2f} pitch {err[1]:.2f} "
            f"crop roll {err[2]:.2f} deg, mouth {err[3]:.3f}")  # fmt: skip
    return net.eval()


def roll_motion(roll: np.ndarray) -> np.ndarray:
    """A clip's roll readings about their mean: the part of roll a clip crop passes on."""
    roll = np.asarray(roll, np.float64)
    return roll - roll.mean()


__all__ = ["CropRollEstimator", "crop_roll", "roll_motion", "roll_samples", "train_roll_estimator"]
