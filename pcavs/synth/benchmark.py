"""SynthTalk cross-reenactment benchmark: identity from A, head motion from B, words from C.

Every case is rendered exactly, so the target video (A's face, B's motion, C's mouth) exists and
the generated video can be scored against it. All images are compared as aligned crops at the
model's size, cropped from the exact landmarks the way inference crops them: the identity photo with
the single-image alignment, the pose source and the targets with the official clip crop (one
similarity per clip, the mouth pinned), so the head's roll and zoom inside a clip stay visible.

Held-out identities: benchmark seeds live in their own range (``TEST_SEED_BASE``), far from the
hashed seeds of ``write_dataset``. The pose and mouth-opening estimators are small CNNs trained on
SynthTalk's ground truth (:func:`train_estimator`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pcavs.audio import mel_windows, melspectrogram
from pcavs.data.augment import gaussian_blur as _blur_tensor
from pcavs.eval.ssim import psnr_batch, ssim_batch
from pcavs.face.align import align_face, clip_frame_matrices, compose, crop_matrix, warp_to_input
from pcavs.media import images_to_tensor, tensor_to_images

from .face_model import FaceIdentity, sample_background, sample_identity
from .motion import LIMITS, PoseTrack, eval_angles, sample_pose
from .render import Rendered, Renderer, render
from .speech import MouthTrack, mouth_track, speech_clip

TEST_SEED_BASE = 7_000_000
ESTIMATOR_SEED_BASE = 8_000_000
RENDER_SIZE = 128  # rendered, then aligned down to the model's size (as the training data)
POSE_KEYS = ("yaw", "pitch", "roll")


@dataclass(frozen=True)
class Triple:
    identity: int  # A: the face
    pose: int  # B: the head motion (and the person in the pose-source video)
    speech: int  # C: the words


def make_triples(count: int = 24, seed: int = 0) -> list[Triple]:
    """``count`` triples of distinct held-out people: A, B and C differ in every triple."""
    base = TEST_SEED_BASE + 1000 * seed
    ids = [base + i for i in range(3 * count)]
    return [Triple(ids[i], ids[count + (i + 7) % count], ids[2 * count + (i + 13) % count]) for i in range(count)]


def person(seed: int) -> FaceIdentity:
    return dataclasses.replace(sample_identity(seed), **sample_background(seed + 1))


@dataclass
class Case:
    """One triple, rendered and aligned at the model's size (uint8 HxWx3 crops)."""

    identity: np.ndarray  # (S,S,3) A's photo
    pose_frames: np.ndarray  # (T,S,S,3) B speaking their own words
    target: np.ndarray  # (T,S,S,3) the truth: A with B's motion, saying C's words
    audio: np.ndarray  # C's speech, 16 kHz
    pose: np.ndarray  # (T,3) yaw, pitch, roll of the target (degrees, pcavs.eval.headpose convention)
    mouth_open: np.ndarray  # (T,) of the target
    mouth_boxes: np.ndarray  # (T,4) x0,y0,x1,y1 of the target's mouth in crop pixels


def _align(frames: np.ndarray, gts: list[dict], size: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Crops of a clip as inference and ``pcavs preprocess`` make them: the official clip crop
    (:mod:`pcavs.face.clip`) from the exact landmarks; a single image gets the photo alignment."""
    lms = [np.asarray(gt["landmarks"], np.float64) for gt in gts]
    if len(lms) == 1:
        crop, m = align_face(frames[0], lms[0], size=size)
        return crop[None], [m]
    frame_ms = clip_frame_matrices(lms)
    crops = np.stack([warp_to_input(f, m, size) for f, m in zip(frames, frame_ms, strict=True)])
    return crops, [compose(crop_matrix(size), m) for m in frame_ms]


def photo_pose(t: Triple) -> PoseTrack:
    """A's photo: one pose of A's own (the still-pose baseline's head)."""
    return sample_pose(t.identity, 1)


def _render_target(
    t: Triple, n: int, drive: MouthTrack | np.ndarray, roll: float | np.ndarray | None = None
) -> Rendered:
    """A's face with B's motion and blinks, the mouth from ``drive`` (C's speech or a mouth track);
    ``roll`` replaces B's roll track (a constant or a track, renderer convention)."""
    track = sample_pose(t.pose, n)
    if roll is not None:
        track = dataclasses.replace(track, roll=np.broadcast_to(np.asarray(roll, np.float64), (n,)).copy())
    return render(person(t.identity), track, drive, RENDER_SIZE, blink_seed=t.pose)


def render_case(t: Triple, size: int, seconds: float = 3.0) -> Case:
    audio_c, _ = speech_clip(t.speech, seconds)
    audio_b, _ = speech_clip(t.pose + 17, seconds)
    n = int(round(seconds * 25))
    pose_b = sample_pose(t.pose, n)
    a, b = person(t.identity), person(t.pose)
    photo = render(a, photo_pose(t), np.zeros(16000), RENDER_SIZE)  # mouth closed
    source = render(b, pose_b, audio_b, RENDER_SIZE, blink_seed=t.pose)
    target = _render_target(t, n, audio_c)
    ident, _ = _align(photo.frames, photo.ground_truth, size)
    pose_crops, _ = _align(source.frames, source.ground_truth, size)
    target_crops, mats = _align(target.frames, target.ground_truth, size)
    boxes = []
    for gt, m in zip(target.ground_truth, mats, strict=True):
        pts = np.asarray(gt["landmarks"], np.float64)[48:68]
        q = pts @ m[:, :2].T + m[:, 2]
        pad = 0.25 * (q[:, 0].max() - q[:, 0].min())
        boxes.append([q[:, 0].min() - pad, q[:, 1].min() - pad, q[:, 0].max() + pad, q[:, 1].max() + pad])
    return Case(
        identity=ident[0], pose_frames=pose_crops, target=target_crops, audio=audio_c,
        pose=np.array([eval_angles(gt) for gt in target.ground_truth]),
        mouth_open=np.array([gt["mouth_open"] for gt in target.ground_truth]),
        mouth_boxes=np.round(np.array(boxes)).astype(int).clip(0, size),
    )  # fmt: skip


def _aligned_target(
    t: Triple, case: Case, drive: MouthTrack | np.ndarray, roll: float | np.ndarray | None = None
) -> np.ndarray:
    """A variant of ``case``'s target (see :func:`_render_target`), aligned as the case is."""
    out = _render_target(t, len(case.target), drive, roll)
    return _align(out.frames, out.ground_truth, case.target.shape[1])[0]


def speech_order(num_frames: int, seed: int) -> np.ndarray:
    """The frame order of the shuffled-speech baseline (shared with :func:`shuffled_target`)."""
    return np.random.default_rng(seed).permutation(num_frames)


def shuffled_target(t: Triple, case: Case, seed: int = 0) -> np.ndarray:
    """The exact target with C's mouth shapes in the shuffled-speech baseline's order (blinks kept).

    A perfect model given the shuffled speech draws this, so its mouth-region error is the most
    that shuffling can cost: the scale against which the true-speech error is a ratio.
    """
    n = len(case.target)
    mt = mouth_track(np.asarray(case.audio, np.float32), n, blink_seed=t.pose)
    order = speech_order(n, seed)
    return _aligned_target(t, case, MouthTrack(mt.open[order], mt.width[order], mt.blink))


def roll_blind_target(t: Triple, case: Case) -> np.ndarray:
    """The exact target with B's roll replaced by the photo's: the best a roll-blind model can draw.

    The official alignment levels the eyes of every frame, so in aligned crops a head's roll shows
    only in its context (background, neck and shading turned the other way), never in the 68
    landmarks the pose code is computed from. A model whose pose code sees only landmarks (the
    released E_n) keeps the photo's context, i.e. the photo's roll; this row's pose error is the
    floor for such models.
    """
    return _aligned_target(t, case, case.audio, roll=float(photo_pose(t).roll[0]))


def roll_motion_target(t: Triple, case: Case) -> np.ndarray:
    """The exact target with B's roll moved to the photo's: B's roll motion around the photo's roll.

    The clip crop fits one similarity per clip, which levels the clip's mean eye line: the driver's
    crops show its roll motion inside the clip, not its mean roll, which is visible only in the
    driver's own context (neck, background). A model trained the official way (identity frame and
    target from one clip) takes the output's mean tilt from the identity photo, so this is the best it
    can draw: its absolute roll error is the floor of the roll column for such models, and its roll
    *motion* error (``roll_motion_err``) equals the exact target's.
    """
    roll = sample_pose(t.pose, len(case.target)).roll
    return _aligned_target(t, case, case.audio, roll=roll - roll.mean() + float(photo_pose(t).roll[0]))


def gaussian_blur(frames: np.ndarray, sigma: float) -> np.ndarray:
    """uint8 frames (T, H, W, 3) blurred by a Gaussian of ``sigma`` pixels (the augmentation's filter)."""
    x = torch.from_numpy(frames).float().permute(0, 3, 1, 2)
    x = _blur_tensor(x, torch.full((len(frames),), float(sigma)))
    return x.permute(0, 2, 3, 1).round().clamp(0, 255).to(torch.uint8).numpy()


# --- generation ----------------------------------------------------------------------------
@torch.no_grad()
def generate_case(model, case: Case, variant: str = "model", batch: int = 16, seed: int = 0,
                  mouth_weight: float | None = None) -> np.ndarray:
    """The model's output for a case; ``variant`` picks a baseline instead.

    ``copy``: the identity photo unchanged; ``shuffled_audio``: the model with C's speech windows
    permuted in time; ``still_pose``: the model with the photo's own pose code for every frame.
    ``mouth_weight`` scales the speech content (None: the model config's, 1.2 as released).
    """
    t = len(case.target)
    if variant == "copy":
        return np.repeat(case.identity[None], t, 0)
    ident = model.encode_identity(images_to_tensor(case.identity[None]))
    mel = melspectrogram(case.audio)
    order = speech_order(t, seed) if variant == "shuffled_audio" else np.arange(t)
    still = model.encode_pose(images_to_tensor(case.identity[None])) if variant == "still_pose" else None
    g = torch.Generator().manual_seed(seed)
    out = []
    for s in range(0, t, batch):
        idx = list(range(s, min(s + batch, t)))
        windows = mel_windows(mel, [int(order[i]) for i in idx])
        mouth = model.mouth_style(model.encode_audio(windows), mouth_weight)
        if still is not None:
            pose = still.expand(len(idx), -1)
        else:
            pose = model.encode_pose(images_to_tensor(case.pose_frames[idx]))
        out.append(tensor_to_images(model.generate(ident, mouth, pose, noise="random", generator=g)))
    return np.concatenate(out)


# --- estimators ----------------------------------------------------------------------------
class Estimator(nn.Module):
    """Aligned crop -> (yaw, pitch, roll) in degrees and mouth opening in [0, 1]."""

    def __init__(self, size: int, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in, s = 3, size
        for c in (width, width * 2, width * 4, width * 4):
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2)]
            c_in, s = c, s // 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c_in * s * s, 128), nn.ReLU(), nn.Linear(128, 4))
        self.size = size
        self.register_buffer("scale", torch.tensor([LIMITS["yaw"], LIMITS["pitch"], LIMITS["roll"], 1.0]))

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.features(images)) * self.scale

    @torch.no_grad()
    def predict(self, crops: np.ndarray, batch: int = 64) -> np.ndarray:
        self.eval()
        chunks = [self(images_to_tensor(crops[i : i + batch])) for i in range(0, len(crops), batch)]
        return torch.cat(chunks).numpy()


#: Spread of a frame's pose around its clip's mean (SynthTalk's 3 s clips: mean |deviation| about
#: 4.6 deg in yaw and pitch and 2.3 deg in roll), for the estimator's clip-like training crops.
_CLIP_SPREAD = {"yaw": 5.8, "pitch": 5.8, "roll": 2.9, "tx": 0.01, "ty": 0.01, "scale": 0.02}


def random_pose(rng: np.random.Generator) -> dict[str, float]:
    """A head pose drawn uniformly within :data:`LIMITS` (the estimators' training poses)."""
    pose = {k: float(rng.uniform(-LIMITS[k], LIMITS[k])) for k in ("yaw", "pitch", "roll", "tx", "ty")}
    pose["scale"] = float(1 + rng.uniform(-LIMITS["scale"], LIMITS["scale"]))
    return pose


def random_mouth(rng: np.random.Generator) -> tuple[float, float]:
    """(opening, width) of a mouth, skewed towards closed as speech is."""
    return float(rng.uniform(0, 1) ** 1.5), float(rng.uniform(0.3, 0.7))


def estimator_samples(count: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random people, poses and mouths, cropped as the benchmark crops clips: (crops, targets).

    The clip crop fits its similarity to the clip's mean face, so each sample is cropped with a
    two-frame clip (an anchor frame at a nearby pose, then the sample) and the second crop is kept.
    """
    rng = np.random.default_rng(seed)
    crops, targets = [], []
    per_person = 20
    for p in range(0, count, per_person):
        r = Renderer(person(ESTIMATOR_SEED_BASE + 1000 * seed + p), RENDER_SIZE)
        for _ in range(min(per_person, count - p)):
            pose = random_pose(rng)
            anchor = {k: v + float(rng.normal(0, _CLIP_SPREAD[k])) for k, v in pose.items()}
            mouth, width = random_mouth(rng)
            _, anchor_gt = r.render_frame(anchor, mouth, width)
            frame, gt = r.render_frame(pose, mouth, width, float(rng.uniform() < 0.1))
            crop, _ = _align(np.stack([frame, frame]), [anchor_gt, gt], size)
            crops.append(crop[1])
            targets.append([*eval_angles(gt), gt["mouth_open"]])
    return np.stack(crops), np.array(targets, np.float32)


def train_estimator(size: int, samples: int = 6000, epochs: int = 12, seed: int = 0, log=print) -> Estimator:
    """Fit the pose/mouth estimator on freshly rendered ground truth (a few minutes on 2 cores)."""
    torch.manual_seed(seed)
    x, y = estimator_samples(samples, size, seed)
    val_x, val_y = estimator_samples(max(200, samples // 10), size, seed + 1)
    net = Estimator(size)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    xt, yt = images_to_tensor(x), torch.from_numpy(y)
    norm = net.scale
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            j = perm[i : i + 64]
            loss = F.smooth_l1_loss(net(xt[j]) / norm, yt[j] / norm, beta=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        err = np.abs(net.predict(val_x) - val_y).mean(0)
        log(f"estimator epoch {epoch + 1}/{epochs}: val |err| yaw {err[0]:.2f} pitch {err[1]:.2f} "
            f"roll {err[2]:.2f} deg, mouth {err[3]:.3f}")  # fmt: skip
    return net.eval()


# --- scoring -------------------------------------------------------------------------------
def mouth_region_error(gen: np.ndarray, target: np.ndarray, boxes: np.ndarray) -> float:
    """Mean absolute error (0-255) inside each frame's mouth box."""
    errs = []
    for g, t, (x0, y0, x1, y1) in zip(gen, target, boxes, strict=True):
        if x1 > x0 and y1 > y0:
            errs.append(np.abs(g[y0:y1, x0:x1].astype(np.float64) - t[y0:y1, x0:x1]).mean())
    return float(np.mean(errs))


def score(gen: np.ndarray, case: Case, estimator: Estimator, roll_reader: Estimator | None = None) -> dict[str, float]:
    """Scores of ``gen`` against the case's target; angle motion is each angle about its clip mean.

    ``roll_reader`` (a :class:`pcavs.synth.rollmeter.CropRollEstimator`) reads the roll motion columns;
    ``*_coarse`` keep them as ``estimator`` reads them (its absolute roll; the same without a reader).
    """
    pred = estimator.predict(gen)
    psnr = psnr_batch(gen, case.target)
    axes = np.abs(pred[:, :3] - case.pose).mean(0)  # yaw, pitch, roll
    truth = case.pose - case.pose.mean(0)
    motion = np.abs((pred[:, :3] - pred[:, :3].mean(0)) - truth).mean(0)
    # the same against the estimator's reading of the exact target instead of the truth: its per-frame
    # noise then largely cancels, the floor is 0
    seen = estimator.predict(case.target)[:, :3]
    agree = np.abs((pred[:, :3] - pred[:, :3].mean(0)) - (seen - seen.mean(0))).mean(0)
    coarse = {"roll_motion_err_coarse": float(motion[2]), "roll_motion_vs_target_coarse": float(agree[2])}
    if roll_reader is not None:
        roll, roll_seen = roll_reader.predict(gen)[:, 2], roll_reader.predict(case.target)[:, 2]
        motion[2] = np.abs((roll - roll.mean()) - truth[:, 2]).mean()
        agree[2] = np.abs((roll - roll.mean()) - (roll_seen - roll_seen.mean())).mean()
    return {
        "ssim": float(np.mean(ssim_batch(gen, case.target))),
        "psnr": float(np.mean(np.minimum(psnr, 100.0))),
        "mouth_l1": mouth_region_error(gen, case.target, case.mouth_boxes),
        "pose_err": float(axes.mean()),
        "mouth_open_err": float(np.abs(pred[:, 3] - case.mouth_open).mean()),
        **{f"{k}_err": float(e) for k, e in zip(POSE_KEYS, axes, strict=True)},
        **{f"{k}_motion_err": float(e) for k, e in zip(POSE_KEYS, motion, strict=True)},
        **{f"{k}_motion_vs_target": float(e) for k, e in zip(POSE_KEYS, agree, strict=True)},
        **coarse,
    }


__all__ = [
    "Case", "Estimator", "Triple", "estimator_samples", "gaussian_blur", "generate_case", "make_triples",
    "mouth_region_error", "photo_pose", "render_case", "roll_blind_target", "roll_motion_target", "score",
    "shuffled_target", "speech_order", "train_estimator",
]  # fmt: skip
