"""The inputs of a generation, checked and decoded before any weights load (bad input fails fast)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pcavs.audio import DEFAULT_AUDIO, num_video_frames
from pcavs.checkpoint import (
    WEIGHTS_FILE,
    CheckpointError,
    is_official_folder,
    is_pcavs_folder,
    load_model,
    load_official,
    official_file,
    read_config,
)
from pcavs.face import FaceAnalyzer, FaceNotFoundError, align_face, default_analyzer
from pcavs.media import (
    MediaError,
    VideoInfo,
    probe_video,
    read_audio_native,
)
from pcavs.model import INFERENCE_NETWORKS
from pcavs.posetrack import (
    PoseTrack,
    load_track,
)

from .options import POSE_MODES, AudioSource, ImageSource, PoseSource
from .sources import (
    InputError,
    InputWarning,
    check_input_file,
    check_output_path,
    input_role,
    load_audio,
    load_image,
)


@dataclass
class GenerationInputs:
    """Validated, decoded inputs of one video (everything but the pose frames, which are streamed)."""

    identity: np.ndarray  # RGB uint8 photo
    identity_name: str
    landmarks: np.ndarray  # (68, 2) of the chosen face in the photo
    audio: np.ndarray  # float32 mono at 16 kHz, as read
    audio_name: str
    pose_mode: str
    pose: PoseSource | PoseTrack | None  # a video path, frames or a loaded track (video / self modes)
    pose_name: str | None
    pose_info: VideoInfo | None  # probe of a pose video file
    pose_landmarks: list[np.ndarray] | None  # given per-frame landmarks of the pose video (no detection)
    fps: int
    num_frames: int  # T = num_video_frames(len(audio)): frames 0 .. T-1 are generated
    warnings: list[str] = field(default_factory=list)
    # the soundtrack of the output: the input's own rate and channels (None: ``audio`` at 16 kHz mono)
    sound: np.ndarray | None = None  # (N, C) float32
    sound_rate: int = DEFAULT_AUDIO.sample_rate


def resolve_pose_mode(pose: PoseSource | None, pose_mode: str | None) -> str:
    """The pose mode to use: ``video`` when a pose source is given, ``still`` otherwise."""
    if pose_mode is None:
        return "still" if pose is None else "video"
    if pose_mode not in POSE_MODES:
        raise InputError(f"unknown pose mode {pose_mode!r}; choose one of {', '.join(POSE_MODES)}")
    if pose_mode == "video" and pose is None:
        raise InputError("pose mode 'video' needs a pose video (--pose VIDEO); or use --pose-mode still/frontal/self")
    if pose_mode == "self" and pose is not None:
        raise InputError(
            "pose mode 'self' takes the head pose from the --audio video itself; drop --pose, "
            "or use --pose-mode video to take it from --pose"
        )
    return pose_mode


def is_path(x: Any) -> bool:
    return isinstance(x, str | os.PathLike)


def prepare_inputs(
    identity: ImageSource,
    audio: AudioSource,
    pose: PoseSource | None = None,
    pose_mode: str | None = None,
    *,
    output: str | os.PathLike[str] | None = None,
    fps: int = 25,
    face_index: int = 0,
    analyzer: FaceAnalyzer | None = None,
    identity_landmarks: np.ndarray | None = None,
    pose_landmarks: Sequence[np.ndarray] | None = None,
    overwrite: bool = False,
) -> GenerationInputs:
    """Check and decode every input, cheapest check first; no model is needed.

    ``identity_landmarks`` (68, 2) and ``pose_landmarks`` (one (68, 2) array per pose frame) replace
    face detection, for callers with their own landmarks (e.g. SynthTalk's exact ones). ``output`` must not
    be one of the inputs, nor an existing file unless ``overwrite``.

    Raises :class:`InputError`, :class:`MediaError` or :class:`FaceNotFoundError` with the file name,
    the problem and the fix. Silent audio is accepted with an :class:`InputWarning`.
    """
    if not isinstance(fps, int) or isinstance(fps, bool) or not 1 <= fps <= 120:
        raise InputError(f"fps must be a whole number of frames per second between 1 and 120, got {fps!r}")
    if not isinstance(face_index, int) or face_index < 0:
        raise InputError(f"face index must be 0 (the largest face) or more, got {face_index!r}")
    mode = resolve_pose_mode(pose, pose_mode)
    # 1. paths that must exist, and the output folder: instant
    if is_path(identity):
        check_input_file(identity, "identity photo")
    if is_path(audio):
        check_input_file(audio, "audio")
    elif mode == "self":
        raise InputError("pose mode 'self' needs the audio as a video file (its frames drive the pose), not an array")
    if is_path(pose):
        check_input_file(pose, "pose video")
    if output is not None:
        check_output(output, {"identity photo": identity, "audio": audio, "pose video": pose}, overwrite)
    # 2. the photo (the header is checked before any pixel is decoded: huge images fail instantly)
    image, identity_name = load_image(identity, "identity photo")
    # 3. decode the audio (also proves the file is media and long enough)
    wave, audio_name, notes = load_audio(audio, fps)
    sound, sound_rate = None, DEFAULT_AUDIO.sample_rate
    if is_path(audio):  # the viewer hears the input as it was (e.g. 48 kHz stereo); the model reads 16 kHz mono
        sound, sound_rate = read_audio_native(audio)
        if sound_rate == DEFAULT_AUDIO.sample_rate and sound.shape[1] == 1:
            sound = None  # the same as the model's waveform
    if mode in ("still", "frontal") and pose is not None:
        note = f"pose mode '{mode}' ignores the pose video {pose if is_path(pose) else '(frames)'}"
        warnings.warn(note, InputWarning, stacklevel=2)
        notes.append(note)
    # 4. the pose video: probing reads the packet index only (detects truncation, no video stream)
    pose_info, pose_name, pose_src = None, None, pose
    if mode == "self":
        pose_src = audio
        pose_info = _probe_pose(audio, fps, "audio video (pose mode 'self')")
        pose_name = f"audio video {audio}"
    elif mode == "video":
        if is_path(pose) and Path(pose).suffix.lower() == ".npz":  # a pose track (pcavs pose extract)
            pose_src = load_track(pose)
            pose_name = f"pose track {pose}"
        elif is_path(pose):
            pose_info = _probe_pose(pose, fps, "pose video")
            pose_name = f"pose video {pose}"
        else:
            pose_name = "the pose frames"
            if isinstance(pose, np.ndarray) and (pose.ndim != 4 or pose.shape[-1] != 3 or pose.dtype != np.uint8):
                raise InputError(f"pose frames must be an (N, H, W, 3) uint8 array, got {pose.shape} {pose.dtype}")
    # 5. the face in the photo (detection is the slowest check: ~0.05-2 s)
    given_pose = None if pose_landmarks is None else [_check_landmarks(lm, "pose landmarks") for lm in pose_landmarks]
    if identity_landmarks is not None:
        landmarks = _check_landmarks(identity_landmarks, "identity landmarks")
    else:
        label = f"identity photo {identity_name}" if is_path(identity) else identity_name
        landmarks = identity_face(image, label, analyzer, face_index, notes)
    return GenerationInputs(
        identity=image,
        identity_name=identity_name,
        landmarks=landmarks,
        audio=wave,
        audio_name=audio_name,
        pose_mode=mode,
        pose=pose_src if mode in ("video", "self") else None,
        pose_name=pose_name,
        pose_info=pose_info,
        pose_landmarks=given_pose,
        fps=fps,
        num_frames=num_video_frames(wave.size, fps, DEFAULT_AUDIO.sample_rate),
        warnings=list(notes),
        sound=sound,
        sound_rate=sound_rate,
    )


def identity_face(
    image: np.ndarray, label: str, analyzer: FaceAnalyzer | None = None, face_index: int = 0,
    notes: list[str] | None = None,
) -> np.ndarray:
    """The 68 landmarks of face ``face_index`` (0 = largest) of the photo; a note (warned and appended
    to ``notes``) when there are several faces. ``label`` names the photo in messages."""
    analyzer = analyzer or default_analyzer()
    boxes = analyzer.detect(image, name=label)
    if face_index >= len(boxes):
        raise FaceNotFoundError(f"{label}: --face-index {face_index} asked for, but {len(boxes)} face(s) found; "
                                f"use 0 (the largest) to {len(boxes) - 1}")
    if len(boxes) > 1:
        b = boxes[face_index]
        which = "the largest" if face_index == 0 else f"number {face_index} by size, 0 = largest"
        note = (f"{label}: {len(boxes)} faces found; using face {face_index} ({which}, {b.width:.0f}x"
                f"{b.height:.0f} px at x={b.left:.0f}, y={b.top:.0f}); choose another with --face-index K")
        warnings.warn(note, InputWarning, stacklevel=3)
        if notes is not None:
            notes.append(note)
    return analyzer.landmarks(image, boxes[face_index], name=label)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_output(output: str | os.PathLike[str], inputs: dict[str, Any], overwrite: bool = False) -> Path:
    """The output path, refused when it is one of the ``inputs`` (role -> source) or, unless
    ``overwrite``, an existing file: writing it would destroy the user's file."""
    out = Path(output)
    for role, src in inputs.items():  # first: the most useful message for "-o photo.png"
        if is_path(src) and (_same_file(out, Path(src)) or out.resolve() == Path(src).resolve()):
            raise InputError(f"{out}: the output is the {role} {src}; writing it would destroy the input; "
                             "choose another -o")
    out = check_output_path(out)
    if out.exists() and not overwrite:
        raise InputError(f"{out}: already exists; pass --overwrite (-y) to replace it, or choose another -o")
    return out


def _check_landmarks(landmarks: Any, role: str) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2) or not np.all(np.isfinite(lm)):
        raise InputError(f"{role}: expected 68 (x, y) points in the 68-point iBUG order, got shape {lm.shape}")
    return lm


def _probe_pose(path: str | os.PathLike[str], fps: int, role: str) -> VideoInfo:
    with input_role(role, path):
        info = probe_video(path, fps=fps)  # a truncated file, no video stream, no frames: MediaError
    if info.num_frames < 1:
        raise MediaError(f"{role} {path}: has no frames; use another video")
    return info


def check_weights(path: str | os.PathLike[str]) -> None:
    """Fail fast (before decoding inputs) on a weights folder that is missing, empty or incomplete.

    Only file presence and config.json are checked here; the tensors are checked when they are loaded.
    """
    p = Path(path)
    folder = p.parent if p.is_file() else p
    if not p.exists() or not (is_pcavs_folder(folder) or is_official_folder(folder)):
        load_model(p)  # raises CheckpointError with the full explanation, without loading anything
    elif is_pcavs_folder(folder):
        read_config(folder)  # a missing or invalid config.json
        if not (folder / WEIGHTS_FILE).exists():
            raise CheckpointError(f"{folder / WEIGHTS_FILE}: missing; the folder has config.json but no weights")
    elif not all(official_file(folder, n).exists() for n in INFERENCE_NETWORKS):
        load_official(folder)  # raises "official checkpoint folder is incomplete, missing ..." before building


def align_identity(inputs: GenerationInputs, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The official aligned crop (``size`` x ``size``) of the photo's face and the photo -> crop matrix."""
    return align_face(inputs.identity, inputs.landmarks, size=size)
