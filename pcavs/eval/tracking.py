"""Pass 1 of an evaluation: faces tracked over a video (landmarks only), and the scores they give."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from pcavs.eval.common import CROP_SIZE, EvalOptions, EvaluationError, FrameSource
from pcavs.eval.headpose import head_pose_from_landmarks, pose_error
from pcavs.eval.landmarks import lmd
from pcavs.face import (
    TEMPLATE_224,
    Box,
    FaceAnalyzer,
    FaceLostError,
    FaceTracker,
    compose,
    crop_matrix,
    default_analyzer,
    similarity_lstsq,
    three_points,
    transform_points,
)
from pcavs.media import read_video_frames


# ----------------------------------------------------------------------------------------- tracking
@dataclass
class FaceTrack:
    """Pass 1 of one video: where the face is in every frame."""

    name: str
    num_frames: int
    frame_size: tuple[int, int]  # (height, width) of the analysed frames
    aligned_input: bool  # the frames were resized to CROP_SIZE and are the crops themselves
    detected: np.ndarray  # (T,) bool: a face was detected in this frame (not interpolated)
    landmarks: np.ndarray  # (T, 68, 2) in analysed-frame pixels; interpolated over gaps; NaN if never found
    matrices: np.ndarray  # (T, 2, 3) analysed frame -> CROP_SIZE aligned crop
    notes: list[str] = field(default_factory=list)
    taken_as_crops: bool = False  # the frames are the face crops (declared, or see frames_are_crops)

    @property
    def faces_found(self) -> int:
        return int(self.detected.sum())

    def crop_landmarks(self) -> np.ndarray:
        """Landmarks in crop pixels ``(T, 68, 2)`` (NaN where never found)."""
        out = np.full_like(self.landmarks, np.nan)
        for i in range(self.num_frames):
            if np.isfinite(self.landmarks[i]).all():
                out[i] = transform_points(self.matrices[i], self.landmarks[i])
        return out


def iter_frames(source: FrameSource, fps: int) -> Iterator[np.ndarray]:
    if isinstance(source, str | os.PathLike):
        return read_video_frames(source, fps=fps)
    return iter(source)


def source_name(source: FrameSource) -> str:
    return str(source) if isinstance(source, str | os.PathLike) else "the frames"


def resize_square(frame: np.ndarray, size: int) -> np.ndarray:
    h, w = frame.shape[:2]
    if (h, w) == (size, size):
        return frame
    resample = Image.BOX if min(h, w) > size else Image.BILINEAR
    return np.asarray(Image.fromarray(np.ascontiguousarray(frame)).resize((size, size), resample))


def _scale_matrix(h: int, w: int, size: int) -> np.ndarray:
    """Frame pixels -> a ``size`` x ``size`` resize of the frame (pixel-centre convention)."""
    kx, ky = size / w, size / h
    return np.array([[kx, 0.0, 0.5 * kx - 0.5], [0.0, ky, 0.5 * ky - 0.5]])


def analyzer_for(options: EvalOptions, analyzer: FaceAnalyzer | None) -> FaceAnalyzer:
    if analyzer is not None:
        return analyzer
    return default_analyzer().with_options(use_cnn=options.use_cnn)


# Where dlib's HOG detector puts the face box in an official aligned 224 crop (measured on the demo
# photo, pose video and skimage's astronaut: left 45-51, top 29-37, right 176-194, bottom 162-178).
# Declared crops (--aligned) get their landmarks from this box without any detection.
CROP_FACE_BOX = Box(44.0, 28.0, 188.0, 172.0)


def _check_size(name: str, frame: np.ndarray, size: tuple[int, int] | None, index: int) -> tuple[int, int]:
    """The video's frame size, fixed by its first frame; a frame of another size is an error."""
    if size is not None and frame.shape[:2] != size:
        raise EvaluationError(f"{name}: frame {index} is {frame.shape[1]}x{frame.shape[0]}, the first was "
                              f"{size[1]}x{size[0]}; re-encode the video at one size")
    return size or frame.shape[:2]


def frames_are_crops(aligned: bool | None, frame_size: tuple[int, int], faces_found: int) -> bool:
    """The one rule (``evaluate`` and ``report``) for taking a video's frames as aligned face crops.

    ``aligned=True``: declared (``--aligned`` / ``--generated-aligned``); ``False``: never; ``None``: when
    no face is found in any frame of a square video (what ``pcavs generate`` writes without
    ``--paste-back``, e.g. the built-in model's 64x64 cartoon faces, which no detector may find).
    """
    if aligned is not None:
        return bool(aligned)
    return faces_found == 0 and frame_size[0] == frame_size[1]


def _track_declared_crops(source: FrameSource, name: str, options: EvalOptions, an: FaceAnalyzer) -> FaceTrack:
    """Declared crops: no detection; landmarks from the shape predictor in the crop's fixed face box."""
    marks: list[np.ndarray] = []
    size: tuple[int, int] | None = None
    frames = iter_frames(source, options.fps)
    try:
        for frame in frames:
            size = _check_size(name, frame, size, len(marks))
            marks.append(an.landmarks(resize_square(frame, CROP_SIZE), CROP_FACE_BOX))
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()
    if not marks:
        raise EvaluationError(f"{name}: the video has no frames; use another file")
    count = len(marks)
    note = f"{name}: frames taken as aligned face crops as declared (no face detection)"
    return FaceTrack(name, count, (CROP_SIZE, CROP_SIZE), True, np.ones(count, bool), np.stack(marks),
                     np.repeat(np.eye(3)[None, :2], count, axis=0), [note], taken_as_crops=True)


def track_video(
    source: FrameSource,
    *,
    aligned: bool | None = None,
    options: EvalOptions = EvalOptions(),
    analyzer: FaceAnalyzer | None = None,
    require_face: bool = True,
) -> FaceTrack:
    """Pass 1: detect and track the face in every frame of a video (path) or a frame sequence.

    Whether the frames are taken as aligned crops follows :func:`frames_are_crops`. ``aligned=True``:
    the frames are aligned face crops (resized to 224, used as they are, and never searched for a face:
    the landmarks come from the crop's fixed face box); ``None``: tracked, and a square video without any
    face is taken as aligned crops (with a note). A non-square video without any face raises
    :class:`EvaluationError` unless ``require_face`` is False, in which case its whole frames are
    squeezed into the crops.
    """
    name = source_name(source)
    an = analyzer_for(options, analyzer)
    if aligned:  # declared crops: frames_are_crops says so whatever the frames hold
        return _track_declared_crops(source, name, options, an)
    tracker = FaceTracker(an, size=CROP_SIZE, window=options.smooth_window, max_gap=1 << 30, keep_frames=False)
    results = []
    size: tuple[int, int] | None = None
    count = 0
    frames = iter_frames(source, options.fps)
    try:
        for frame in frames:
            size = _check_size(name, frame, size, count)
            count += 1
            results.extend(tracker.push(frame))
        try:
            results.extend(tracker.flush())
        except FaceLostError:
            results = []  # no face in any frame
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()
    if count == 0 or size is None:
        raise EvaluationError(f"{name}: the video has no frames; use another file")
    notes: list[str] = []
    analysed = (int(size[0]), int(size[1]))
    landmarks = np.full((count, 68, 2), np.nan)
    detected = np.zeros(count, bool)
    matrices = np.repeat(_scale_matrix(analysed[0], analysed[1], CROP_SIZE)[None], count, axis=0)
    for tf in results:
        landmarks[tf.index] = tf.landmarks
        detected[tf.index] = not tf.interpolated
        matrices[tf.index] = tf.matrix
    crops = frames_are_crops(aligned, analysed, int(detected.sum()))
    if crops:
        notes.append(f"{name}: no face found in any frame; its square frames are taken as aligned face crops "
                     "(pass --aligned to skip the search)")
    elif not detected.any():
        if not require_face:
            notes.append(f"{name}: no face found in any frame; whole frames are used instead of face crops")
        else:
            raise EvaluationError(
                f"{name}: no face found in any of its {count} frames, so it cannot be aligned; use a video with a "
                "clearly visible face (or pass --detector hog+cnn for hard faces)"
            )
    return FaceTrack(name, count, analysed, False, detected, landmarks, matrices, notes, taken_as_crops=crops)


def clip_pose_angles(track: FaceTrack) -> np.ndarray:
    """``(T, 3)`` yaw/pitch/roll (degrees) in the clip-aligned 224 frame; NaN rows where no face was detected."""
    out = np.full((track.num_frames, 3), np.nan)
    idx = np.flatnonzero(track.detected)
    if idx.size == 0:
        return out
    mean_pts = np.mean([three_points(track.landmarks[i]) for i in idx], axis=0)
    m = compose(crop_matrix(CROP_SIZE), similarity_lstsq(mean_pts, TEMPLATE_224))
    for i in idx:
        out[i] = head_pose_from_landmarks(transform_points(m, track.landmarks[i]), CROP_SIZE)
    return out


def landmark_scores(gen: FaceTrack, ref: FaceTrack) -> dict[str, float | None]:
    """LMD (mouth, full face) in crop pixels over the frames where both faces were detected (None if none)."""
    n = min(gen.num_frames, ref.num_frames)
    both = gen.detected[:n] & ref.detected[:n]
    if not both.any():
        return {"lmd_mouth": None, "lmd_face": None}
    g, r = gen.crop_landmarks()[:n][both], ref.crop_landmarks()[:n][both]
    return {"lmd_mouth": lmd(g, r, mouth_only=True), "lmd_face": lmd(g, r, mouth_only=False)}


def pose_scores(gen: FaceTrack, pose_track: FaceTrack) -> dict[str, float | None]:
    """Mean absolute yaw/pitch/roll error (degrees) over frames where both faces were detected."""
    pa, pb = clip_pose_angles(gen), clip_pose_angles(pose_track)
    n = min(len(pa), len(pb))
    ok = np.isfinite(pa[:n]).all(axis=1) & np.isfinite(pb[:n]).all(axis=1)
    keys = ("pose_error", "pose_error_yaw", "pose_error_pitch", "pose_error_roll")
    if not ok.any():
        return dict.fromkeys(keys)
    d = np.abs((pa[:n][ok] - pb[:n][ok] + 180.0) % 360.0 - 180.0).mean(axis=0)
    return dict(zip(keys, (pose_error(pa[:n][ok], pb[:n][ok]), *(float(x) for x in d)), strict=True))
