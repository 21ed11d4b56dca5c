"""One photo + speech audio (+ a pose video) -> a finished talking-face mp4 with the audio muxed in.

::

    pipe = TalkingFacePipeline.from_pretrained("weights/", device="auto")   # weights loaded once
    pipe.generate(identity="me.jpg", audio="speech.wav", pose="nod.mp4", output="out.mp4")
    pipe.generate(identity=photo_array, audio=wave_16k, pose_mode="frontal", output="front.mp4")

    generate_video("me.jpg", "speech.wav", "out.mp4", weights="weights/")   # one call

Work order (why): :func:`prepare_inputs` checks and decodes everything that is cheap (paths, output
folder, audio decode and length, pose video probe, face in the photo) *before* weights are loaded, so
bad input fails fast and nothing is written. Generation then streams: the identity is encoded once,
and for each batch of frames the speech windows, pose codes (from the pose video as it is decoded)
and generated frames are produced and handed straight to the atomic :class:`VideoWriter`. Memory does
not grow with the length of the video, apart from the waveform and its mel (~0.7 MB per minute).

Timing: frame ``i`` is shown at ``i / fps`` and driven by the speech window the model was trained to
pair with that frame (see :mod:`pcavs.infer.sources`). The writer puts audio sample 0 at t = 0, so
the reported A/V offset (the picture's lead over the sound) is 0 ms by default.

Random noise (``noise="random"``) for frame ``i`` comes from its own generator, seeded from
``(seed, i)`` (:func:`frame_generators`), and pose codes are encoded in fixed blocks of source frames
(:class:`StreamedPose`): the same inputs and seed give the same frames for every batch size.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property, partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm import tqdm

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
from pcavs.device import resolve_device
from pcavs.errors import UserError
from pcavs.face import FaceAnalyzer, FaceNotFoundError, align_face, default_analyzer, paste_back
from pcavs.face.paste import PASTE_BACK_MAX_SIZE, fit_paste_back
from pcavs.media import (
    MediaError,
    VideoInfo,
    VideoWriter,
    images_to_tensor,
    probe_video,
    read_audio_native,
    read_video_frames,
    tensor_to_images,
)
from pcavs.model import INFERENCE_NETWORKS, PCAVS, IdentityCode, generator_chunk
from pcavs.posetrack import (
    PoseTrack,
    TrackCodes,
    TrackEdit,
    apply_code_edits,
    edit_track,
    encoder_hash,
    extract_track,
    load_track,
    track_codes,
)

from .posesource import ConstantPose, FrameSource, PoseCodes, StreamedPose, tracked_crops
from .sources import (
    InputError,
    InputWarning,
    check_input_file,
    check_output_path,
    input_role,
    load_audio,
    load_image,
    speech_features,
    speech_windows,
    timing_error_ms,
)

__all__ = [
    "POSE_MODES",
    "InputError",
    "InputWarning",
    "GenerationInputs",
    "GenerationOptions",
    "GenerationResult",
    "TalkingFacePipeline",
    "align_identity",
    "check_weights",
    "generate_video",
    "prepare_inputs",
    "resolve_device",
    "resolve_pose_mode",
    "USER_ERRORS",
]

PoseMode = Literal["video", "still", "frontal", "self"]
POSE_MODES: tuple[str, ...] = ("video", "still", "frontal", "self")
DETECTORS: tuple[str, ...] = ("hog", "hog+cnn")  # pose-video tracking (as pcavs evaluate --detector)
NOISE_MODES: tuple[str, ...] = ("random", "const", "none")

#: Exceptions that mean "the user can fix this" (one base, :class:`pcavs.errors.UserError`): the CLI
#: prints them and exits with status 2, the UI shows them, ``pcavs batch`` records them per row.
USER_ERRORS: tuple[type[BaseException], ...] = (UserError,)

ImageSource = str | os.PathLike[str] | np.ndarray
AudioSource = str | os.PathLike[str] | np.ndarray | torch.Tensor
PoseSource = str | os.PathLike[str] | np.ndarray | Iterable[np.ndarray]


# ----------------------------------------------------------------------------------------- inputs
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


def _is_path(x: Any) -> bool:
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
    if _is_path(identity):
        check_input_file(identity, "identity photo")
    if _is_path(audio):
        check_input_file(audio, "audio")
    elif mode == "self":
        raise InputError("pose mode 'self' needs the audio as a video file (its frames drive the pose), not an array")
    if _is_path(pose):
        check_input_file(pose, "pose video")
    if output is not None:
        check_output(output, {"identity photo": identity, "audio": audio, "pose video": pose}, overwrite)
    # 2. the photo (the header is checked before any pixel is decoded: huge images fail instantly)
    image, identity_name = load_image(identity, "identity photo")
    # 3. decode the audio (also proves the file is media and long enough)
    wave, audio_name, notes = load_audio(audio, fps)
    sound, sound_rate = None, DEFAULT_AUDIO.sample_rate
    if _is_path(audio):  # the viewer hears the input as it was (e.g. 48 kHz stereo); the model reads 16 kHz mono
        sound, sound_rate = read_audio_native(audio)
        if sound_rate == DEFAULT_AUDIO.sample_rate and sound.shape[1] == 1:
            sound = None  # the same as the model's waveform
    if mode in ("still", "frontal") and pose is not None:
        note = f"pose mode '{mode}' ignores the pose video {pose if _is_path(pose) else '(frames)'}"
        warnings.warn(note, InputWarning, stacklevel=2)
        notes.append(note)
    # 4. the pose video: probing reads the packet index only (detects truncation, no video stream)
    pose_info, pose_name, pose_src = None, None, pose
    if mode == "self":
        pose_src = audio
        pose_info = _probe_pose(audio, fps, "audio video (pose mode 'self')")
        pose_name = f"audio video {audio}"
    elif mode == "video":
        if _is_path(pose) and Path(pose).suffix.lower() == ".npz":  # a pose track (pcavs pose extract)
            pose_src = load_track(pose)
            pose_name = f"pose track {pose}"
        elif _is_path(pose):
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
        label = f"identity photo {identity_name}" if _is_path(identity) else identity_name
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
        if _is_path(src) and (_same_file(out, Path(src)) or out.resolve() == Path(src).resolve()):
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


# ---------------------------------------------------------------------------------------- options
@dataclass(frozen=True)
class GenerationOptions:
    """How to generate; every field has the CLI's default."""

    mouth_weight: float | None = None  # scale of the speech feature; None: the model's (1.2)
    batch_size: int = 8
    paste_back: bool = False  # blend each face into the full identity photo
    seed: int = 0
    noise: str = "random"  # generator noise: random (official, seeded), const, none
    # bf16 autocast: 1.7x faster on a 2-core CPU (official preset), max |diff| about 1e-3 vs fp32
    precision: str = "fp32"
    align_audio: bool = False  # True: centre each speech window on its frame (only for models trained so)
    progress: bool = False  # tqdm bar on stderr
    pose_face_index: int = 0  # which face the pose-video tracker follows (0 = largest)
    max_gap: int = 12  # longest run of face-less pose frames that is interpolated
    overwrite: bool = False  # replace an existing output file (never an input)
    max_size: int = PASTE_BACK_MAX_SIZE  # paste-back: longest output side (0: the photo's size)
    detector: str = "hog+cnn"  # pose-video tracking: hog (fast, frontal faces) or hog+cnn (CNN where HOG misses)
    pose_edit: TrackEdit | None = None  # trim, retime, loop, smooth, amplitude, mirror... of the pose motion

    def __post_init__(self) -> None:
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise InputError(f"batch size must be 1 or more, got {self.batch_size!r}")
        if self.noise not in NOISE_MODES:
            raise InputError(f"unknown noise mode {self.noise!r}; choose one of {', '.join(NOISE_MODES)}")
        if self.precision not in PRECISIONS:
            raise InputError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.mouth_weight is not None and not np.isfinite(self.mouth_weight):
            raise InputError(f"mouth weight must be a finite number, got {self.mouth_weight!r}")
        if self.detector not in DETECTORS:
            raise InputError(f"unknown detector {self.detector!r}; choose one of {', '.join(DETECTORS)}")
        if self.max_size < 0:
            raise InputError(f"max size must be 0 (no cap) or a number of pixels, got {self.max_size}")
        if self.max_gap < 0 or self.pose_face_index < 0:
            raise InputError("max_gap and pose_face_index must be >= 0")

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> GenerationOptions:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise TypeError(f"unknown generation option(s): {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
        return cls(**kwargs)


# ----------------------------------------------------------------------------------------- result
@dataclass
class GenerationResult:
    """What was written."""

    output: Path
    num_frames: int
    fps: int
    width: int
    height: int
    audio_duration: float  # seconds of audio muxed in
    elapsed: float  # wall seconds of generation and encoding (model loading excluded)
    first_frame_s: float  # wall seconds from the start of generation to the first frame written
    pose_mode: str
    pose_source_frames: int | None  # source frames the pose was taken from (video / self modes)
    av_offset_ms: float  # speech-window centre minus frame time (mean), by construction
    av_offset_max_ms: float  # the largest per-frame value (row rounding at fps other than 25)
    warnings: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        """Seconds of video (num_frames / fps)."""
        return self.num_frames / self.fps

    @property
    def frames_per_second(self) -> float:
        """Generation speed."""
        return self.num_frames / self.elapsed if self.elapsed > 0 else float("inf")

    def summary(self) -> str:
        """``wrote OUT.mp4: N frames, S s, F frames/s (pose: MODE), A/V offset 0 ms``."""
        pose = f"pose: {self.pose_mode}"
        offset = f"A/V offset {round(self.av_offset_ms):d} ms"  # round(): no "-0 ms" from float dust
        if self.av_offset_max_ms - abs(self.av_offset_ms) > 0.5:
            offset += f" (±{self.av_offset_max_ms:.0f} ms row rounding at {self.fps} fps)"
        return (
            f"wrote {self.output}: {self.num_frames} frames, {self.duration:.2f} s, "
            f"{self.frames_per_second:.1f} frames/s ({pose}), {offset}"
        )


# --------------------------------------------------------------------------------------- pipeline
PRECISIONS = ("fp32", "bf16")


def batch_bounds(num_frames: int, batch_size: int) -> list[tuple[int, int]]:
    """Frame ranges per model call: a single frame first, so the first frame is out quickly, then
    full batches."""
    bounds = [(0, min(1, num_frames))] if num_frames else []
    bounds += [(a, min(a + batch_size, num_frames)) for a in range(1, num_frames, batch_size)]
    return bounds


def frame_generators(seed: int, start: int, stop: int, device: torch.device) -> list[torch.Generator]:
    """One noise generator per output frame ``start .. stop-1``, seeded from ``(seed, frame index)``.

    A frame's noise then depends on the seed and its index only, never on the batch it is drawn in.
    """
    gens = []
    for i in range(start, stop):
        state = np.random.SeedSequence([seed % 2**64, i]).generate_state(1, dtype=np.uint64)[0]
        gens.append(torch.Generator(device=device).manual_seed(int(state) % 2**63))
    return gens


class TalkingFacePipeline:
    """A loaded model serving many :meth:`generate` calls (weights are loaded once)."""

    def __init__(
        self, model: PCAVS, device: str | torch.device | None = None, analyzer: FaceAnalyzer | None = None
    ) -> None:
        self.device = resolve_device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.analyzer = analyzer or default_analyzer()

    @classmethod
    def from_pretrained(
        cls, weights: str | os.PathLike[str], device: str | torch.device = "auto", analyzer: FaceAnalyzer | None = None
    ) -> TalkingFacePipeline:
        """Load a pcavs safetensors folder or an official ``latest_net_*.pth`` folder."""
        dev = resolve_device(device)
        return cls(load_model(weights, device=dev), dev, analyzer)

    @property
    def image_size(self) -> int:
        """The model's face crop size (224 official, 64 small, 32 tiny)."""
        return int(self.model.cfg.image_size)

    @cached_property
    def pose_encoder_hash(self) -> str:
        """Key of this model's pose codes in track files (:func:`pcavs.posetrack.encoder_hash` of E)."""
        return encoder_hash(self.model.E.state_dict())

    def align_identity(self, inputs: GenerationInputs) -> tuple[np.ndarray, np.ndarray]:
        """``(crop, matrix)``: the official aligned crop at the model's size, and photo -> crop matrix."""
        return align_identity(inputs, self.image_size)

    def generate(
        self,
        identity: ImageSource,
        audio: AudioSource,
        pose: PoseSource | None = None,
        pose_mode: str | None = None,
        *,
        output: str | os.PathLike[str],
        fps: int = 25,
        face_index: int = 0,
        identity_landmarks: np.ndarray | None = None,
        pose_landmarks: Sequence[np.ndarray] | None = None,
        **options: Any,
    ) -> GenerationResult:
        """Make one video. Inputs are paths or arrays (photo: HxWx3 uint8; audio: mono float at 16 kHz;
        pose: video path or (N, H, W, 3) uint8 frames). ``options``: fields of :class:`GenerationOptions`.
        Given landmarks replace face detection (see :func:`prepare_inputs`).
        """
        opts = GenerationOptions.from_kwargs(**options)
        inputs = prepare_inputs(identity, audio, pose, pose_mode, output=output, fps=fps, face_index=face_index,
                                analyzer=self.analyzer, identity_landmarks=identity_landmarks,
                                pose_landmarks=pose_landmarks, overwrite=opts.overwrite)
        return self.render(inputs, output, opts)

    # ---------------------------------------------------------------------------------- render
    def _pose_codes(self, inputs: GenerationInputs, identity_crop: np.ndarray, opts: GenerationOptions) -> PoseCodes:
        model, size = self.model, self.image_size
        if inputs.pose_mode == "frontal":
            # the paper's extreme-view experiment: a zero pose code
            return ConstantPose(torch.zeros(model.cfg.mapping.pose_dim, device=self.device))
        if inputs.pose_mode == "still":
            return ConstantPose(model.encode_pose(images_to_tensor(identity_crop[None], self.device))[0])
        src = inputs.pose
        if opts.pose_edit is not None:  # edits work on a track: a pose video is tracked into one first
            if not isinstance(src, PoseTrack):
                if not _is_path(src):
                    raise InputError("pose edits need the pose as a video file or a track (.npz), not frames")
                src = extract_track(src, size=size, fps=inputs.fps, analyzer=self.analyzer, max_gap=opts.max_gap,
                                    face_index=opts.pose_face_index)
            src = edit_track(src, opts.pose_edit)
        if isinstance(src, PoseTrack):
            track = src.select(np.arange(min(len(src), inputs.num_frames)))  # rows past the audio are unused
            codes = None if track.meta.get("mirror") else track.codes.get(self.pose_encoder_hash)
            if codes is None:  # not cached for this model: crops from the source video(s), encoded here
                codes = track_codes(track, lambda b: model.encode_pose(images_to_tensor(b, self.device)), size)
            still = None
            if track.meta.get("start_from_photo"):
                still = model.encode_pose(images_to_tensor(identity_crop[None], self.device))[0].cpu().numpy()
            return TrackCodes(apply_code_edits(codes, track.meta, still), loop=track.meta.get("loop", "pingpong"))
        frames: FrameSource
        if _is_path(src):
            frames = partial(read_video_frames, src, fps=inputs.fps)  # decoded twice: landmarks, then crops
        elif isinstance(src, np.ndarray | Sequence):
            frames = src
        else:
            frames = list(src)  # a one-shot iterable of frames: the crop needs two passes
        analyzer = self.analyzer.with_options(use_cnn=opts.detector == "hog+cnn")
        crops = tracked_crops(frames, size, analyzer=analyzer, name=inputs.pose_name or "pose video",
                              face_index=opts.pose_face_index, max_gap=opts.max_gap,
                              landmarks=inputs.pose_landmarks, limit=inputs.num_frames)

        def encode(batch: np.ndarray) -> torch.Tensor:
            return model.encode_pose(images_to_tensor(batch, self.device)).cpu()

        return StreamedPose(crops, encode, name=inputs.pose_name or "pose video")

    def faces(
        self, identity: IdentityCode, windows: torch.Tensor, pose: torch.Tensor, start: int, opts: GenerationOptions
    ) -> torch.Tensor:
        """Frames ``start .. start+B-1`` (B, 3, S, S) float32 in [-1, 1] from their speech ``windows``
        (B, 1, n_mels, 20) and pose codes (B, pose_dim): the one generation step of :meth:`render` and
        of the live stream (:mod:`pcavs.infer.stream`). A frame's noise depends on its index only."""
        model, stop = self.model, start + windows.shape[0]
        weight = model.cfg.mouth_weight if opts.mouth_weight is None else opts.mouth_weight
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=opts.precision == "bf16")
        with torch.inference_mode(), autocast:
            mouth = model.mouth_style(model.encode_audio(windows.to(self.device)), weight)
            gens = frame_generators(opts.seed, start, stop, self.device) if opts.noise == "random" else None
            out = model.generate(identity, mouth, pose.to(self.device), noise=opts.noise, generator=gens,
                                 chunk=generator_chunk(self.device, model.cfg.image_size))
        if start == 0 and not bool(torch.isfinite(out).all()):
            raise CheckpointError(
                "the model produced NaN/inf values for the first frame, so the video would be "
                "black; the weights are likely corrupted (re-download or re-convert them) or "
                "--precision bf16 overflowed (try fp32)")
        return out.float()

    def _face_batches(
        self, inputs: GenerationInputs, crop: np.ndarray, poses: PoseCodes, opts: GenerationOptions
    ) -> Iterator[tuple[int, torch.Tensor]]:
        with torch.inference_mode():
            identity = self.model.encode_identity(images_to_tensor(crop[None], self.device))  # once per video
        mel = speech_features(inputs.audio, align_audio=opts.align_audio)  # ~0.3 MB per minute
        for start, stop in batch_bounds(inputs.num_frames, opts.batch_size):
            windows = speech_windows(mel, range(start, stop), inputs.fps)
            with torch.inference_mode():  # a streamed pose video encodes its crops here
                pose = poses.codes(start, stop)
            yield start, self.faces(identity, windows, pose, start, opts)

    def iter_faces(
        self, inputs: GenerationInputs, options: GenerationOptions | None = None
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """``(first frame, (B, 3, S, S) float faces in [-1, 1])`` batches of :meth:`render`'s frames,
        before encoding (the crop, no paste-back): for callers that want the pictures, not a file."""
        opts = options or GenerationOptions()
        crop, _ = self.align_identity(inputs)
        with torch.inference_mode():
            poses = self._pose_codes(inputs, crop, opts)
        try:
            yield from self._face_batches(inputs, crop, poses, opts)
        finally:
            poses.close()

    def render(
        self, inputs: GenerationInputs, output: str | os.PathLike[str], options: GenerationOptions | None = None
    ) -> GenerationResult:
        """Generate frames 0 .. T-1 for prepared ``inputs`` and write ``output`` (atomic: all or nothing)."""
        opts = options or GenerationOptions()
        sources = {"identity photo": None, "audio": None, "pose video": inputs.pose}
        for role, name in (("identity photo", inputs.identity_name), ("audio", inputs.audio_name)):
            sources[role] = name if Path(name).exists() else None  # a path, not "the ... array"
        out = check_output(output, sources, opts.overwrite)
        # paste-back output is the photo (longer side capped at opts.max_size, even sizes); otherwise the crop
        size = (self.image_size, self.image_size)
        background, paste_note = None, None
        t0 = time.perf_counter()
        with torch.inference_mode():
            crop, matrix = self.align_identity(inputs)
            if opts.paste_back:
                try:
                    background, matrix, paste_note = fit_paste_back(inputs.identity, matrix, opts.max_size,
                                                                    inputs.identity_name)
                except ValueError as exc:
                    raise InputError(str(exc)) from None
                size = background.shape[:2]
                if paste_note:
                    warnings.warn(paste_note, InputWarning, stacklevel=2)
            poses = self._pose_codes(inputs, crop, opts)
            try:
                with (
                    VideoWriter(out, fps=inputs.fps, audio=inputs.audio if inputs.sound is None else inputs.sound,
                                sample_rate=inputs.sound_rate) as wr,
                    tqdm(total=inputs.num_frames, unit="frame", desc=out.name, file=sys.stderr,
                         disable=not opts.progress, dynamic_ncols=True, leave=False) as bar,
                ):
                    first_frame_s = None
                    for start, batch in self._face_batches(inputs, crop, poses, opts):
                        stop = start + batch.shape[0]
                        faces = tensor_to_images(batch)
                        if background is None:
                            wr.write(faces)
                        else:
                            # one full-size frame at a time: a batch of 4K photos would be hundreds of MB
                            for face in faces:
                                wr.write(paste_back(background, face, matrix))
                        bar.update(stop - start)
                        if first_frame_s is None:
                            first_frame_s = time.perf_counter() - t0
            finally:
                poses.close()
        elapsed = time.perf_counter() - t0
        mean_off, max_off = timing_error_ms(inputs.fps, opts.align_audio)
        return GenerationResult(
            output=out,
            num_frames=inputs.num_frames,
            fps=inputs.fps,
            width=size[1],
            height=size[0],
            audio_duration=inputs.audio.size / DEFAULT_AUDIO.sample_rate,
            elapsed=elapsed,
            first_frame_s=elapsed if first_frame_s is None else first_frame_s,
            pose_mode=inputs.pose_mode,
            pose_source_frames=poses.source_frames if isinstance(poses, StreamedPose | TrackCodes) else None,
            av_offset_ms=mean_off,
            av_offset_max_ms=max_off,
            warnings=list(inputs.warnings) + ([paste_note] if paste_note else []),
        )


def generate_video(
    identity: ImageSource,
    audio: AudioSource,
    output: str | os.PathLike[str],
    *,
    weights: str | os.PathLike[str] | PCAVS,
    pose: PoseSource | None = None,
    pose_mode: str | None = None,
    device: str | torch.device = "auto",
    fps: int = 25,
    face_index: int = 0,
    identity_landmarks: np.ndarray | None = None,
    pose_landmarks: Sequence[np.ndarray] | None = None,
    **options: Any,
) -> GenerationResult:
    """One call: check the inputs, load the weights, generate ``output``. ``options``: :class:`GenerationOptions`."""
    opts = GenerationOptions.from_kwargs(**options)
    dev = resolve_device(device)
    if not isinstance(weights, PCAVS):
        check_weights(weights)
    inputs = prepare_inputs(identity, audio, pose, pose_mode, output=output, fps=fps, face_index=face_index,
                            identity_landmarks=identity_landmarks, pose_landmarks=pose_landmarks,
                            overwrite=opts.overwrite)
    pipe = TalkingFacePipeline(weights, dev) if isinstance(weights, PCAVS) else (
        TalkingFacePipeline.from_pretrained(weights, dev))
    return pipe.render(inputs, output, opts)
