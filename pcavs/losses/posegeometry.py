"""Pose-geometry supervision of the pose code (ours, off by default).

G's reconstruction alone lets the pose mappings (``to_headpose`` -> ``headpose_embed``) drop what a
clip's head pose is on average (on SynthTalk the per-clip pitch offset is read out of E's feature to
1.5 deg and out of the 12-d pose code only to 2.8 deg; ``python -m pcavs.train.diagnose angles``).
This term asks the first :data:`GEOMETRY_DIMS` dimensions of the pose code to follow, across the
batch, four scale-free quantities of the target frame's stored landmarks: the eye-line angle (roll),
the nose tip's sideways offset (yaw) and the nose tip's and the jaw corners' height against the eye
line (pitch; the jaw corners lie behind the face, so they move against the nose when the head nods).
Correlation, not regression: the code keeps its own scale and offset, no parameters are added (the
checkpoint keeps the released keys), and any dataset with landmarks gives the target.
"""

from __future__ import annotations

import torch
from torch import Tensor

# iBUG-68 indices
_LEFT_EYE = slice(36, 42)  # image-left eye
_RIGHT_EYE = slice(42, 48)
_NOSE_TIP = 30
_JAW_CORNERS = (0, 16)
GEOMETRY_NAMES = ("roll", "yaw_nose", "pitch_nose", "pitch_jaw")
GEOMETRY_DIMS = len(GEOMETRY_NAMES)


def head_geometry(points: Tensor) -> Tensor:
    """``(N, 68, 2)`` pixel landmarks -> ``(N, 4)``: roll (radians, clockwise in the image positive),
    then the nose tip's x and y and the jaw corners' mean y in the levelled face, in inter-ocular
    distances from the eye midpoint. Invariant to the face's position and size in the image."""
    if points.ndim != 3 or points.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be (N, 68, 2), got {tuple(points.shape)}")
    left, right = points[:, _LEFT_EYE].mean(1), points[:, _RIGHT_EYE].mean(1)
    mid, axis = (left + right) / 2, right - left
    dist = axis.norm(dim=1).clamp_min(1e-6)
    roll = torch.atan2(axis[:, 1], axis[:, 0])
    cos, sin = axis[:, 0] / dist, axis[:, 1] / dist

    def levelled(p: Tensor) -> tuple[Tensor, Tensor]:
        d = p - mid
        return (d[:, 0] * cos + d[:, 1] * sin) / dist, (-d[:, 0] * sin + d[:, 1] * cos) / dist

    nose_x, nose_y = levelled(points[:, _NOSE_TIP])
    _, jaw_y = levelled(points[:, list(_JAW_CORNERS)].mean(1))
    return torch.stack([roll, nose_x, nose_y, jaw_y], 1)


def pose_geometry_loss(pose_code: Tensor, points: Tensor) -> Tensor:
    """Mean over the four quantities of ``1 - corr(pose_code[:, d], head_geometry(points)[:, d])``
    across the batch: 0 when each leading code dimension is an increasing affine function of its
    quantity. The batch must hold at least 3 frames; a quantity constant over the batch adds 0."""
    if pose_code.ndim != 2 or pose_code.shape[1] < GEOMETRY_DIMS:
        raise ValueError(f"pose code must be (N, >={GEOMETRY_DIMS}), got {tuple(pose_code.shape)}")
    if pose_code.shape[0] < 3 or pose_code.shape[0] != points.shape[0]:
        raise ValueError(f"need >= 3 frames, as many codes as landmark sets: {pose_code.shape[0]} vs {points.shape[0]}")
    target = head_geometry(points.float()).detach()
    code = pose_code[:, :GEOMETRY_DIMS].float()
    code = code - code.mean(0)
    target = target - target.mean(0)
    spread = target.norm(dim=0)
    corr = (code * target).sum(0) / (code.norm(dim=0) * spread).clamp_min(1e-8)
    corr = torch.where(spread > 1e-6, corr, torch.ones_like(corr))
    return (1 - corr).mean()


def output_geometry_loss(fake_points: Tensor, real_points: Tensor) -> Tensor:
    """Mean over the four quantities of ``|head_geometry(fake) - head_geometry(real)|``, each in units of
    the real frames' spread over the batch: how far the generated head's roll, turn and nod are from the
    target's, as a landmark detector reads both (its bias on real faces cancels). Unlike
    :func:`pose_geometry_loss` this judges G's drawing, not the pose code; ``real_points`` is detached."""
    if fake_points.shape != real_points.shape or fake_points.shape[0] < 2:
        shapes = f"{tuple(fake_points.shape)}, {tuple(real_points.shape)}"
        raise ValueError(f"need two equal (N >= 2, 68, 2) landmark sets, got {shapes}")
    real = head_geometry(real_points.detach().float())
    fake = head_geometry(fake_points.float())
    # the spread is floored so a batch of one pose does not turn a 0.1-degree miss into a large loss
    spread = real.std(0).clamp_min(1e-2)
    return ((fake - real).abs() / spread).mean()


__all__ = ["GEOMETRY_DIMS", "GEOMETRY_NAMES", "head_geometry", "output_geometry_loss", "pose_geometry_loss"]
