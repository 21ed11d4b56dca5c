"""Per-video evaluation of a generated talking face against the real video (the PC-AVS protocol and more).

For one generated video (and optionally the real video, the audio, the pose source and the identity
photo) :func:`evaluate_video` returns every metric of the paper's Table 1 plus sync and pose:

==================  =====================================================================================
``ssim``, ``psnr``  frame ``i`` of the generated vs frame ``i`` of the real video, both as official
                    aligned 224x224 face crops; the shorter video sets the length. PSNR is averaged over
                    frames after capping each at ``psnr_cap`` (100 dB), so identical frames stay finite.
``cpbd``            sharpness of the generated aligned crops (8-bit BT.601 grayscale), mean over frames.
``lmd_mouth``,      landmark distance (:func:`pcavs.eval.landmarks.lmd`) between generated and real crops,
``lmd_face``        mouth points 48-67 / all 68, in 224-crop pixels; the dlib landmarks of each frame are
                    mapped into its crop with the crop's alignment matrix. Frames where either face was
                    not detected are left out.
``csim``            cosine similarity of dlib's 128-d face descriptors, identity photo vs each generated
                    frame with a detected face (mean). Without ``identity`` the real video's first
                    detected face is used.
``pose_error``      mean absolute yaw/pitch/roll difference (degrees, ``head_pose_from_landmarks``) of
                    generated vs pose-source frames. Each video's landmarks are first mapped with one
                    similarity for the whole clip (from its average eye and mouth points, like the
                    official preprocessing), so a full-frame pose video and an aligned generated crop are
                    compared in the same 224 frame while per-frame head motion, roll included, is kept.
``sync_offset``,    the PC-AVS contrastive sync (:mod:`pcavs.eval.sync`), with ``--weights``.
``sync_confidence``
``lse_d``, ``lse_c``, SyncNet's LSE metrics and its AV offset (official sign), with ``--syncnet``.
``syncnet_offset``
==================  =====================================================================================

How faces are found: every video is tracked with :class:`pcavs.face.FaceTracker` (HOG detection in a
window around the previous face, landmarks smoothed over 9 frames) and cropped with the official
alignment. Frames without a detected face keep an interpolated crop (so SSIM, PSNR and CPBD still
count them) but are left out of every landmark or embedding metric; their count is reported. A video
that *is* already an aligned face crop (``pcavs generate`` without ``--paste-back``) can be declared
with ``generated_aligned=True``: its frames are then resized to 224 and used as they are, which also
works for early checkpoints whose faces no detector finds. A square video in which no face is found
at all is treated that way automatically (with a note).

The work is done in two passes over the decoded frames: pass 1 tracks faces and keeps only
landmarks (~1 KB per frame), pass 2 decodes again and computes every per-frame measurement, batch by
batch, so memory does not grow with the length of the videos.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.ndimage as ndi
from PIL import Image

from pcavs.errors import UserError
from pcavs.eval.cpbd import cpbd as cpbd_score
from pcavs.eval.headpose import head_pose_from_landmarks, pose_error
from pcavs.eval.landmarks import lmd
from pcavs.eval.metrics import csim
from pcavs.eval.ssim import psnr_batch, ssim_batch
from pcavs.eval.sync import (
    MAX_SHIFT,
    ContrastiveSync,
    LSEResult,
    SyncNetScorer,
    SyncResult,
    _smoothed_box_params,
    measure_sync,
    syncnet_boxes,
    syncnet_crop,
)
from pcavs.face import (
    TEMPLATE_224,
    Box,
    FaceAnalyzer,
    FaceLostError,
    FaceNotFoundError,
    FaceTracker,
    compose,
    crop_matrix,
    default_analyzer,
    invert_affine,
    similarity_lstsq,
    three_points,
    transform_points,
    warp_to_input,
)
from pcavs.media import MediaError, probe_video, read_audio, read_image, read_video_frames, require_file

__all__ = [
    "CROP_SIZE",
    "LSEResult",
    "SyncResult",
    "METRICS",
    "EvalOptions",
    "EvalPair",
    "EvaluationError",
    "FaceTrack",
    "FrameSeries",
    "VideoScores",
    "aggregate",
    "clip_pose_angles",
    "evaluate_many",
    "evaluate_video",
    "format_table",
    "identity_embedding",
    "landmark_scores",
    "load_pairs",
    "pose_scores",
    "resolve_pairs",
    "scan_video",
    "track_video",
]

CROP_SIZE = 224
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")

#: (key, column title, better) of every metric, in table order.
METRICS: tuple[tuple[str, str, str], ...] = (
    ("ssim", "SSIM", "higher"),
    ("psnr", "PSNR", "higher"),
    ("cpbd", "CPBD", "higher"),
    ("lmd_mouth", "LMD-m", "lower"),
    ("lmd_face", "LMD-f", "lower"),
    ("csim", "CSIM", "higher"),
    ("pose_error", "Pose", "lower"),
    ("sync_offset", "Offset", "closer to 0"),
    ("sync_confidence", "Sync-C", "higher"),
    ("lse_d", "LSE-D", "lower"),
    ("lse_c", "LSE-C", "higher"),
)

FrameSource = str | os.PathLike[str] | np.ndarray | Sequence[np.ndarray]


class EvaluationError(UserError, ValueError):
    """Inputs that cannot be evaluated; the message names the file and what to do."""


@dataclass(frozen=True)
class EvalOptions:
    """How to evaluate; the defaults are the PC-AVS protocol."""

    fps: int = 25
    generated_aligned: bool | None = None  # None: track faces (square face-less videos count as crops)
    reference_aligned: bool | None = None
    max_shift: int = MAX_SHIFT
    psnr_cap: float = 100.0
    use_cnn: bool = False  # dlib's CNN detector as a fallback: finds more faces, ~1-3 s per face-less frame
    smooth_window: int = 9  # landmark smoothing of the face tracker (odd; 1 = off)
    batch_size: int = 16
    embeddings: bool = True  # dlib face descriptors (CSIM, identity over time): 0.1-0.2 s per face on a CPU
    embedding_stride: int = 1  # describe every n-th frame only (CSIM is then a mean over those frames)

    def __post_init__(self) -> None:
        if self.embedding_stride < 1 or self.batch_size < 1 or self.max_shift < 0:
            raise EvaluationError("embedding_stride and batch_size must be >= 1 and max_shift >= 0")
        if self.smooth_window < 1 or self.smooth_window % 2 == 0:
            raise EvaluationError(f"the smoothing window must be a positive odd number, got {self.smooth_window}")


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


def _iter_frames(source: FrameSource, fps: int) -> Iterator[np.ndarray]:
    if isinstance(source, str | os.PathLike):
        return read_video_frames(source, fps=fps)
    return iter(source)


def _name(source: FrameSource) -> str:
    return str(source) if isinstance(source, str | os.PathLike) else "the frames"


def _resize(frame: np.ndarray, size: int) -> np.ndarray:
    h, w = frame.shape[:2]
    if (h, w) == (size, size):
        return frame
    resample = Image.BOX if min(h, w) > size else Image.BILINEAR
    return np.asarray(Image.fromarray(np.ascontiguousarray(frame)).resize((size, size), resample))


def _scale_matrix(h: int, w: int, size: int) -> np.ndarray:
    """Frame pixels -> a ``size`` x ``size`` resize of the frame (pixel-centre convention)."""
    kx, ky = size / w, size / h
    return np.array([[kx, 0.0, 0.5 * kx - 0.5], [0.0, ky, 0.5 * ky - 0.5]])


def _analyzer(options: EvalOptions, analyzer: FaceAnalyzer | None) -> FaceAnalyzer:
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
    frames = _iter_frames(source, options.fps)
    try:
        for frame in frames:
            size = _check_size(name, frame, size, len(marks))
            marks.append(an.landmarks(_resize(frame, CROP_SIZE), CROP_FACE_BOX))
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
    name = _name(source)
    an = _analyzer(options, analyzer)
    if aligned:  # declared crops: frames_are_crops says so whatever the frames hold
        return _track_declared_crops(source, name, options, an)
    tracker = FaceTracker(an, size=CROP_SIZE, window=options.smooth_window, max_gap=1 << 30, keep_frames=False)
    results = []
    size: tuple[int, int] | None = None
    count = 0
    frames = _iter_frames(source, options.fps)
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


# ----------------------------------------------------------------------------------------- pass 2
@dataclass
class FrameSeries:
    """Pass 2 of one video: per-frame measurements (NaN where not measurable)."""

    num_frames: int
    sharpness: np.ndarray  # (T,) variance of the Laplacian of the crop's luma
    cpbd: np.ndarray  # (T,)
    embeddings: np.ndarray  # (T, 128) dlib descriptors; NaN rows where no face was detected
    visual: np.ndarray | None  # (T, D) PC-AVS visual speech content, with a sync model
    ssim: np.ndarray | None  # (N,) vs the reference, N = the shorter length
    psnr: np.ndarray | None  # (N,) uncapped
    reference_embedding: np.ndarray | None  # the reference's first detected face
    thumbnails: dict[int, np.ndarray] = field(default_factory=dict)  # requested crops
    syncnet_frames: int = 0  # frames pushed into the SyncNet scorer


def _analysed_frames(source: FrameSource, track: FaceTrack, fps: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(analysed frame, aligned crop)`` per frame, decoding the video again."""
    frames = _iter_frames(source, fps)
    inv_crop = invert_affine(crop_matrix(CROP_SIZE))
    try:
        for i, frame in enumerate(frames):
            if i >= track.num_frames:
                break
            if track.aligned_input:
                img = _resize(frame, CROP_SIZE)
                yield img, img
            else:
                yield frame, warp_to_input(frame, compose(inv_crop, track.matrices[i]), CROP_SIZE)
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()


def _gray8(rgb: np.ndarray) -> np.ndarray:
    """8-bit grayscale as Pillow's ``convert("L")`` (rounded BT.601 luma): how evaluation scripts usually
    load frames for the ``cpbd`` package (``imread(..., mode="L")``)."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).convert("L"))


def _laplacian_var(gray: np.ndarray) -> float:
    return float(ndi.laplace(gray.astype(np.float64)).var())


def scan_video(
    source: FrameSource,
    track: FaceTrack,
    *,
    reference: tuple[FrameSource, FaceTrack] | None = None,
    sync: ContrastiveSync | None = None,
    syncnet: SyncNetScorer | None = None,
    reference_embedding: bool = False,
    thumbnails: Iterable[int] = (),
    options: EvalOptions = EvalOptions(),
    analyzer: FaceAnalyzer | None = None,
) -> FrameSeries:
    """Pass 2: per-frame sharpness, CPBD, face descriptors, sync features and (with a reference) SSIM/PSNR."""
    an = _analyzer(options, analyzer)
    t = track.num_frames
    sharp, cp = np.full(t, np.nan), np.full(t, np.nan)
    emb = np.full((t, 128), np.nan)
    visual: list[np.ndarray] = []
    ssim_v: list[np.ndarray] = []
    psnr_v: list[np.ndarray] = []
    want_thumbs = set(thumbnails)
    thumbs: dict[int, np.ndarray] = {}
    ref_emb: np.ndarray | None = None
    box_params = None
    if syncnet is not None:
        syncnet.reset()
        if np.isfinite(track.landmarks).all():
            box_params = _smoothed_box_params(syncnet_boxes(track.landmarks))
    ref_iter = _analysed_frames(reference[0], reference[1], options.fps) if reference is not None else None
    ref_track = reference[1] if reference is not None else None
    batch: list[np.ndarray] = []
    gen_b: list[np.ndarray] = []
    ref_b: list[np.ndarray] = []

    def flush_batches() -> None:
        if batch and sync is not None:
            visual.append(sync.visual_features(np.stack(batch)))
        batch.clear()
        if gen_b:
            g, r = np.stack(gen_b), np.stack(ref_b)
            ssim_v.append(ssim_batch(g, r))
            psnr_v.append(psnr_batch(g, r))
        gen_b.clear()
        ref_b.clear()

    def ref_descriptor(i: int, frame: np.ndarray) -> np.ndarray | None:
        assert ref_track is not None
        if i < ref_track.num_frames and ref_track.detected[i]:
            return an.embedding(frame, ref_track.landmarks[i])
        return None

    ref_done = ref_iter is None
    ref_count = 0
    try:
        for i, (frame, crop) in enumerate(_analysed_frames(source, track, options.fps)):
            gray = _gray8(crop)
            sharp[i] = _laplacian_var(gray)
            cp[i] = cpbd_score(gray)
            if options.embeddings and track.detected[i] and i % options.embedding_stride == 0:
                emb[i] = an.embedding(frame, track.landmarks[i])
            if i in want_thumbs:
                thumbs[i] = crop
            if box_params is not None and syncnet is not None:
                syncnet.push(syncnet_crop(frame, *box_params[i]))
            if sync is not None:
                batch.append(crop)
            if not ref_done and ref_iter is not None:
                nxt = next(ref_iter, None)
                if nxt is None:
                    ref_done = True
                else:
                    ref_count += 1
                    gen_b.append(crop)
                    ref_b.append(nxt[1])
                    if reference_embedding and ref_emb is None:
                        ref_emb = ref_descriptor(i, nxt[0])
            if len(batch) >= options.batch_size or len(gen_b) >= options.batch_size:
                flush_batches()
        flush_batches()
        # the identity may first be visible in the reference after the generated video ended
        if reference_embedding and ref_emb is None and ref_iter is not None and not ref_done:
            for j, (frame, _) in enumerate(ref_iter, start=ref_count):
                ref_emb = ref_descriptor(j, frame)
                if ref_emb is not None:
                    break
    finally:
        if ref_iter is not None:
            ref_iter.close()
    return FrameSeries(
        num_frames=t,
        sharpness=sharp,
        cpbd=cp,
        embeddings=emb,
        visual=np.concatenate(visual) if visual else None,
        ssim=np.concatenate(ssim_v) if ssim_v else (np.zeros(0) if reference is not None else None),
        psnr=np.concatenate(psnr_v) if psnr_v else (np.zeros(0) if reference is not None else None),
        reference_embedding=ref_emb,
        thumbnails=thumbs,
        syncnet_frames=syncnet.frames_seen if syncnet is not None else 0,
    )


# ----------------------------------------------------------------------------------------- inputs
def _check_file(path: str | os.PathLike[str], role: str) -> Path:
    return require_file(path, role, EvaluationError)


def identity_embedding(
    identity: str | os.PathLike[str] | np.ndarray,
    analyzer: FaceAnalyzer | None = None,
    options: EvalOptions = EvalOptions(),
) -> np.ndarray:
    """dlib descriptor of the largest face in an identity photo (a path or an RGB uint8 array)."""
    an = _analyzer(options, analyzer)
    if isinstance(identity, np.ndarray):
        image, name = identity, "the identity image"
    else:
        p = _check_file(identity, "identity photo")
        name = str(p)
        image = read_image(p) if p.suffix.lower() in IMAGE_SUFFIXES else next(read_video_frames(p, fps=options.fps))
    lm = an.landmarks(image, name=name)
    return an.embedding(image, lm)


def _load_wave(audio: str | os.PathLike[str] | np.ndarray | None, generated: FrameSource,
               notes: list[str]) -> np.ndarray | None:
    if isinstance(audio, np.ndarray):
        return np.asarray(audio, dtype=np.float32)
    if audio is not None:
        return read_audio(_check_file(audio, "audio file"))
    if isinstance(generated, str | os.PathLike):
        try:
            if probe_video(generated).has_audio:
                return read_audio(generated)
        except MediaError as exc:
            notes.append(f"audio of {generated} unreadable ({exc}); sync not measured")
            return None
        notes.append(f"{generated} has no audio track and no --audio was given; sync not measured")
    return None


# ----------------------------------------------------------------------------------------- scores
@dataclass
class VideoScores:
    """Everything measured for one generated video (None: not measurable with the given inputs)."""

    generated: str
    reference: str | None = None
    audio: str | None = None
    pose_source: str | None = None
    identity: str | None = None
    frames_generated: int = 0
    frames_reference: int | None = None
    frames_compared: int | None = None
    faces_generated: int = 0  # frames with a detected face
    faces_reference: int | None = None
    ssim: float | None = None
    psnr: float | None = None
    cpbd: float | None = None
    lmd_mouth: float | None = None
    lmd_face: float | None = None
    csim: float | None = None
    pose_error: float | None = None
    pose_error_yaw: float | None = None
    pose_error_pitch: float | None = None
    pose_error_roll: float | None = None
    sync_offset: int | None = None  # frames; > 0: the sound comes later than the picture
    sync_offset_ms: float | None = None
    sync_confidence: float | None = None
    sync_reliable: bool | None = None  # False: confidence below the expert's threshold, sync_offset is None
    sync_expert: str | None = None  # which sync expert measured sync_offset / sync_confidence
    sync_threshold: float | None = None  # that expert's calibrated confidence threshold
    lse_d: float | None = None
    lse_c: float | None = None
    syncnet_offset: int | None = None  # official SyncNet sign (vshift - argmin): > 0 means the sound is early
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN and infinities become None."""
        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            if isinstance(v, float | np.floating):
                v = float(v) if math.isfinite(v) else None
            elif isinstance(v, np.integer):
                v = int(v)
            out[k] = v
        return out


def _nanmean(x: np.ndarray) -> float | None:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None


def _same_file(a: Any, b: Any) -> bool:
    if not isinstance(a, str | os.PathLike) or not isinstance(b, str | os.PathLike):
        return a is b
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def evaluate_video(
    generated: FrameSource,
    reference: FrameSource | None = None,
    *,
    audio: str | os.PathLike[str] | np.ndarray | None = None,
    pose_source: FrameSource | None = None,
    identity: str | os.PathLike[str] | np.ndarray | None = None,
    sync: ContrastiveSync | None = None,
    syncnet: SyncNetScorer | None = None,
    options: EvalOptions = EvalOptions(),
    analyzer: FaceAnalyzer | None = None,
) -> VideoScores:
    """Score one generated video; see the module docstring for every metric.

    Videos are paths (decoded at ``options.fps``) or frame sequences; ``audio`` defaults to the
    generated video's own sound, ``pose_source`` to the reference. Raises :class:`EvaluationError`,
    :class:`pcavs.media.MediaError` or :class:`pcavs.face.FaceNotFoundError` naming the file.
    """
    for src, role in ((generated, "generated video"), (reference, "reference video"), (pose_source, "pose video")):
        if isinstance(src, str | os.PathLike):
            _check_file(src, role)
    an = _analyzer(options, analyzer)
    scores = VideoScores(generated=_name(generated), reference=None if reference is None else _name(reference))
    notes = scores.notes
    gen = track_video(generated, aligned=options.generated_aligned, options=options, analyzer=an)
    notes.extend(gen.notes)
    scores.frames_generated, scores.faces_generated = gen.num_frames, gen.faces_found
    ref = None
    if reference is not None:
        same = _same_file(reference, generated) and options.reference_aligned == options.generated_aligned
        ref = gen if same else track_video(reference, aligned=options.reference_aligned, options=options, analyzer=an)
        if not same:
            notes.extend(ref.notes)
        scores.frames_reference, scores.faces_reference = ref.num_frames, ref.faces_found
        if ref.num_frames != gen.num_frames:
            notes.append(f"lengths differ ({gen.num_frames} generated vs {ref.num_frames} reference frames); "
                         f"the first {min(gen.num_frames, ref.num_frames)} are compared")

    # identity and audio first: a bad file should fail before the slow pass
    id_emb = None
    if identity is not None:
        id_emb = identity_embedding(identity, an, options)
        scores.identity = _name(identity) if not isinstance(identity, np.ndarray) else "the identity image"
    wave = _load_wave(audio, generated, notes)
    if wave is not None:
        scores.audio = _name(audio) if isinstance(audio, str | os.PathLike) else (
            "the audio array" if audio is not None else f"{scores.generated} (its own audio)")

    series = scan_video(generated, gen, reference=(reference, ref) if ref is not None else None, sync=sync,
                        syncnet=syncnet if wave is not None else None,
                        reference_embedding=id_emb is None and ref is not None, options=options, analyzer=an)
    if id_emb is None and series.reference_embedding is not None:
        id_emb = series.reference_embedding
        scores.identity = f"{scores.reference} (first frame with a face)"

    # --- full-reference image metrics
    if ref is not None and series.ssim is not None:
        n = len(series.ssim)
        scores.frames_compared = n
        scores.ssim = _nanmean(series.ssim)
        scores.psnr = _nanmean(np.minimum(series.psnr, options.psnr_cap)) if series.psnr is not None else None
    scores.cpbd = _nanmean(series.cpbd)

    # --- landmarks
    if ref is not None:
        lm = landmark_scores(gen, ref)
        scores.lmd_mouth, scores.lmd_face = lm["lmd_mouth"], lm["lmd_face"]
        if scores.lmd_mouth is None:
            notes.append("no frame has a detected face in both videos; LMD not measured")

    # --- identity
    if id_emb is not None and options.embeddings:
        found = np.isfinite(series.embeddings).all(axis=1)
        if found.any():
            scores.csim = _nanmean(np.atleast_1d(csim(series.embeddings[found], id_emb)))
        else:
            notes.append("no face detected in the generated video; CSIM not measured")

    # --- pose
    pose_src = reference if pose_source is None else pose_source
    if pose_src is not None:
        pose_track = ref if (pose_source is None or _same_file(pose_source, reference)) else track_video(
            pose_source, options=options, analyzer=an)
        assert pose_track is not None
        scores.pose_source = _name(pose_src)
        ps = pose_scores(gen, pose_track)
        scores.pose_error = ps["pose_error"]
        scores.pose_error_yaw, scores.pose_error_pitch, scores.pose_error_roll = (
            ps["pose_error_yaw"], ps["pose_error_pitch"], ps["pose_error_roll"])
        if scores.pose_error is None:
            notes.append("no frame has a detected face in both the generated and the pose video; pose not measured")

    # --- sync
    if wave is not None and sync is not None and series.visual is not None:
        res = measure_sync(sync, wave, series.visual, options.max_shift)[0]
        scores.sync_expert, scores.sync_reliable, scores.sync_confidence = res.expert, res.reliable, res.confidence
        scores.sync_threshold = res.threshold
        if res.reliable:  # below the expert's calibrated confidence the best shift is noise: no offset
            scores.sync_offset, scores.sync_offset_ms = res.offset, res.offset * 1000.0 / options.fps
        else:
            notes.append(f"sync offset unreliable: confidence {res.confidence:.3f} is below the "
                         f"{res.expert} expert's threshold {res.threshold:.3f}")
    if wave is not None and syncnet is not None:
        if series.syncnet_frames == 0:
            notes.append("SyncNet not run: no face was found to crop the lips from")
        else:
            try:
                lse = syncnet.result(wave)
                scores.lse_d, scores.lse_c, scores.syncnet_offset = lse.lse_d, lse.lse_c, lse.av_offset
            except ValueError as exc:
                notes.append(f"SyncNet not run: {exc}")
    return scores


# ----------------------------------------------------------------------------------------- many
@dataclass
class EvalPair:
    """One row of a batch evaluation."""

    generated: Path
    reference: Path | None = None
    audio: Path | None = None
    pose_source: Path | None = None
    identity: Path | None = None


_COLUMNS = ("generated", "reference", "audio", "pose_source", "identity")


def load_pairs(list_path: str | os.PathLike[str]) -> list[EvalPair]:
    """Read a CSV (header ``generated,reference[,audio,pose_source,identity]``) or JSON list of pairs.

    JSON is a list of objects with those keys (or ``{"pairs": [...]}``). Relative paths are relative to
    the list file's folder; empty cells mean "not given".
    """
    import csv
    import json

    p = _check_file(list_path, "list file")
    base = p.parent
    rows: list[dict[str, Any]]
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(p.read_text())
            if isinstance(data, dict):
                data = data.get("pairs")
            if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
                raise EvaluationError(f"{p}: expected a JSON list of objects with keys {', '.join(_COLUMNS)}")
            rows = data
        else:
            with p.open(newline="") as f:
                reader = csv.DictReader(f)
                if reader.fieldnames is None or "generated" not in [c.strip() for c in reader.fieldnames]:
                    raise EvaluationError(
                        f"{p}: the first line must be a header naming the columns, e.g. "
                        "generated,reference,audio,pose_source,identity"
                    )
                rows = [{(k or "").strip(): v for k, v in r.items()} for r in reader]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvaluationError(f"{p}: cannot read the list ({exc}); use UTF-8 CSV or JSON") from exc
    pairs = []
    for n, row in enumerate(rows, start=2 if p.suffix.lower() != ".json" else 1):
        row = {k.replace("-", "_"): v for k, v in row.items()}
        unknown = set(row) - set(_COLUMNS)
        if unknown:
            raise EvaluationError(
                f"{p}: unknown column(s) {', '.join(sorted(unknown))}; allowed: {', '.join(_COLUMNS)}"
            )

        def path(key: str, row: dict[str, Any] = row) -> Path | None:
            v = row.get(key)
            if v is None or not str(v).strip():
                return None
            q = Path(str(v).strip()).expanduser()
            return q if q.is_absolute() else base / q

        gen = path("generated")
        if gen is None:
            raise EvaluationError(f"{p}: row {n} has no 'generated' video")
        pairs.append(EvalPair(gen, path("reference"), path("audio"), path("pose_source"), path("identity")))
    if not pairs:
        raise EvaluationError(f"{p}: the list is empty")
    return pairs


def _by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    return {f.stem: f for f in sorted(folder.iterdir()) if f.is_file() and f.suffix.lower() in suffixes}


def resolve_pairs(
    generated: str | os.PathLike[str],
    reference: str | os.PathLike[str] | None = None,
    audio: str | os.PathLike[str] | None = None,
    pose_source: str | os.PathLike[str] | None = None,
    identity: str | os.PathLike[str] | None = None,
) -> list[EvalPair]:
    """What to evaluate: one video, a folder of videos (others matched by file stem), or a list file."""
    g = Path(generated)
    if not g.exists():
        raise EvaluationError(f"{g}: not found; pass a generated video, a folder of videos or a .csv/.json list")
    if g.is_file() and g.suffix.lower() in (".csv", ".json"):
        if any(x is not None for x in (reference, audio, pose_source, identity)):
            raise EvaluationError(f"{g}: with a list file, give the other inputs as its columns, not as options")
        return load_pairs(g)
    if g.is_file():
        return [EvalPair(g, *(None if x is None else Path(x) for x in (reference, audio, pose_source, identity)))]
    videos = _by_stem(g, VIDEO_SUFFIXES)
    if not videos:
        raise EvaluationError(f"{g}: the folder has no videos ({', '.join(VIDEO_SUFFIXES)})")

    def matcher(x: str | os.PathLike[str] | None, role: str, suffixes: tuple[str, ...]) -> Any:
        if x is None:
            return lambda stem: None
        q = Path(x)
        if not q.exists():
            raise EvaluationError(f"{q}: {role} not found; check the path")
        if q.is_file():
            return lambda stem: q
        table = _by_stem(q, suffixes)

        def find(stem: str) -> Path:
            if stem not in table:
                raise EvaluationError(f"{q}: no {role} named {stem}.* to match {g / stem}; add it or remove the video")
            return table[stem]

        return find

    ref_f = matcher(reference, "reference video", VIDEO_SUFFIXES)
    aud_f = matcher(audio, "audio", VIDEO_SUFFIXES + (".wav", ".mp3", ".flac", ".m4a", ".aac", ".ogg"))
    pose_f = matcher(pose_source, "pose video", VIDEO_SUFFIXES)
    id_f = matcher(identity, "identity photo", IMAGE_SUFFIXES + VIDEO_SUFFIXES)
    return [EvalPair(v, ref_f(s), aud_f(s), pose_f(s), id_f(s)) for s, v in videos.items()]


def evaluate_many(
    pairs: Sequence[EvalPair],
    *,
    sync: ContrastiveSync | None = None,
    syncnet: SyncNetScorer | None = None,
    options: EvalOptions = EvalOptions(),
    analyzer: FaceAnalyzer | None = None,
    progress: Any = None,
) -> list[VideoScores]:
    """:func:`evaluate_video` for every pair; a pair that fails gets ``error`` set instead of stopping the run."""
    out = []
    for k, pair in enumerate(pairs):
        try:
            s = evaluate_video(pair.generated, pair.reference, audio=pair.audio, pose_source=pair.pose_source,
                               identity=pair.identity, sync=sync, syncnet=syncnet, options=options, analyzer=analyzer)
        except (EvaluationError, MediaError, FaceNotFoundError) as exc:
            s = VideoScores(generated=str(pair.generated), reference=None if pair.reference is None else str(
                pair.reference), error=str(exc))
        out.append(s)
        if progress is not None:
            progress(k, len(pairs), s)
    return out


def aggregate(scores: Sequence[VideoScores]) -> dict[str, Any]:
    """Mean of every metric over the videos that have it, with how many did."""
    mean: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for key, _, _ in METRICS + (("sync_offset_ms", "", ""),):
        vals = [getattr(s, key) for s in scores if s.error is None and getattr(s, key) is not None]
        vals = [float(v) for v in vals if math.isfinite(float(v))]
        mean[key] = float(np.mean(vals)) if vals else None
        counts[key] = len(vals)
    if any(s.sync_offset is not None for s in scores):
        offs = [abs(s.sync_offset) for s in scores if s.sync_offset is not None]
        mean["abs_sync_offset"] = float(np.mean(offs))
        counts["abs_sync_offset"] = len(offs)
    return {"mean": mean, "counts": counts, "videos": len(scores),
            "failed": sum(1 for s in scores if s.error is not None)}


def format_table(scores: Sequence[VideoScores], summary: dict[str, Any] | None = None, width: int = 28) -> str:
    """Plain-text table: one row per video, metrics as columns, then the mean."""
    shown = [m for m in METRICS if any(getattr(s, m[0]) is not None or (m[0] == "sync_offset" and s.sync_reliable
                                                                         is False) for s in scores)]
    # the offset column is wider: it may say "unreliable"
    head = f"{'video':<{width}}" + "".join(f"{title:>{11 if k == 'sync_offset' else 9}}" for k, title, _ in shown)
    lines = [head, "-" * len(head)]

    def cell(v: Any, key: str, s: VideoScores | None = None) -> str:
        if key == "sync_offset" and s is not None and s.sync_reliable is False:
            return f"{'unreliable':>11}"
        if v is None:
            return f"{'-':>{11 if key == 'sync_offset' else 9}}"
        if key == "sync_offset":
            return f"{int(round(v)):>+11d}" if float(v).is_integer() else f"{v:>+11.2f}"
        return f"{v:>9.3f}" if abs(v) < 100 else f"{v:>9.1f}"

    for s in scores:
        name = Path(s.generated).name
        name = name if len(name) <= width - 1 else "..." + name[-(width - 4):]
        if s.error is not None:
            lines.append(f"{name:<{width}}  failed: {s.error.splitlines()[0][:100]}")
            continue
        lines.append(f"{name:<{width}}" + "".join(cell(getattr(s, k), k, s) for k, _, _ in shown))
    if summary is not None and len(scores) > 1:
        lines.append("-" * len(head))
        lines.append(f"{'mean':<{width}}" + "".join(cell(summary["mean"].get(k), k) for k, _, _ in shown))
    return "\n".join(lines)

