"""Video -> :class:`PoseTrack` (and optionally the crops the pose encoder sees), with the inference crop."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pcavs.eval.headpose import head_pose_sequence
from pcavs.face import FaceAnalyzer, clip_crops, compose, crop_matrix, track_clip
from pcavs.media import VideoWriter, probe_video, read_video_frames

from .codes import track_codes
from .file import PoseTrack

__all__ = ["CROP_POLICY", "add_codes", "extract_track"]

#: Name of the crop policy recorded in track files (:mod:`pcavs.face.clip`).
CROP_POLICY = "official-clip"


def extract_track(
    video: str | os.PathLike[str],
    *,
    size: int = 224,
    fps: int = 25,
    analyzer: FaceAnalyzer | None = None,
    max_gap: int = 12,
    face_index: int = 0,
    crops: str | os.PathLike[str] | None = None,
) -> PoseTrack:
    """Track the face of ``video`` (read at ``fps``) and crop it as ``pcavs generate`` does for a pose video.

    ``crops``: also write the ``size`` x ``size`` aligned crops as a video (H.264, atomically), exactly
    the images the pose encoder reads. Raises the face errors of :func:`pcavs.face.track_clip`.
    """
    info = probe_video(video, fps=fps)
    frames = partial(read_video_frames, video, fps=fps)
    track = track_clip(frames(), analyzer, max_gap=max_gap, face_index=face_index, name=f"video {video}")
    frame_ms = track.frame_matrices()
    to_crop = crop_matrix(size)
    matrices = np.stack([compose(to_crop, m) for m in frame_ms])
    if crops is not None:
        with VideoWriter(crops, fps=fps) as writer:
            for crop in clip_crops(frames(), frame_ms, size):
                writer.write(crop[None])
    n = len(track)
    return PoseTrack(
        time=np.arange(n) / fps,
        landmarks=track.landmarks,
        matrix=matrices,
        align=frame_ms,
        angles=head_pose_sequence(track.landmarks, (info.height, info.width)),
        score=track.scores,
        filled=track.filled,
        shot=track.shots,
        frame=np.arange(n),
        source=np.zeros(n, np.int32),
        meta={"fps": fps, "crop_size": size, "crop": CROP_POLICY, "sources": [str(Path(video))],
              "width": info.width, "height": info.height, "source_fps": info.source_fps,
              "source_frames": info.source_frames, "duration": info.duration},
    )


def add_codes(track: PoseTrack, pipeline: Any) -> str:
    """Compute and cache in ``track`` the pose codes of ``pipeline``'s model (a
    :class:`pcavs.infer.TalkingFacePipeline`), exactly as generation computes them; returns their key."""
    from pcavs.media import images_to_tensor

    model = pipeline.model
    with torch.inference_mode():
        codes = track_codes(track, lambda b: model.encode_pose(images_to_tensor(b, pipeline.device)),
                            pipeline.image_size)
    track.codes[pipeline.pose_encoder_hash] = codes
    return pipeline.pose_encoder_hash
