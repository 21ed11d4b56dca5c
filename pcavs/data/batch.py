"""The one batch type: what :class:`pcavs.data.dataset.ClipDataset` yields and the trainer consumes.

A sample holds K consecutive frames of one clip; the DataLoader stacks B samples. Shapes below are a
batch's (a single sample drops the leading B). Images are in [-1, 1], S is the model's image size.
The mel windows pair with the frames as :mod:`pcavs.audio` documents (window k: the mel rows of frame
``frame[k]``).
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from torch import Tensor


class Batch(TypedDict):
    frames: Tensor  # (B, K, 3, S, S) the target frames
    augmented: Tensor  # (B, K, 3, S, S) the same frames augmented: what the non-identity encoder sees (where
    #                    pose_twin, the pose twin's frames: another person at the same pose and mouth)
    reference: Tensor  # (B, 3, S, S) the identity frame: the same clip outside the K frames, or (share
    #                    DataConfig.reference_other_clip) any frame of another clip of the same person
    mel: Tensor  # (B, K, 1, 80, 20) each frame's mel window
    mel_shifted: Tensor  # (B, K, M, 1, 80, 20) windows of the same clip shifted in time (M may be 0)
    label: Tensor  # (B,) int64 identity label
    clip: Tensor  # (B,) int64 clip index in the dataset
    frame: Tensor  # (B, K) int64 frame indices in the clip
    reference_frame: Tensor  # (B,) int64 the identity frame's index in its clip
    reference_clip: Tensor  # (B,) int64 the identity frame's clip (``clip`` unless taken from another)
    pose_twin: Tensor  # (B,) bool: ``augmented`` shows the pose twin (DataConfig.pose_twins)
    sample: Tensor  # (B,) int64 the sample's index in its epoch plan
    landmarks: NotRequired[Tensor]  # (B, K, 68, 2) crop pixels; only when the shards store them


__all__ = ["Batch"]
