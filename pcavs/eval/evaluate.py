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
``lse_d``, ``lse_c``, SyncNet's LSE metrics and its AV offset (official sign), with ``--syncnet``
``syncnet_offset``  (:mod:`pcavs.eval.syncnet`).
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

import os
from pathlib import Path
from typing import Any

import numpy as np

from pcavs.eval.common import (
    CROP_SIZE,
    IMAGE_SUFFIXES,
    METRICS,
    EvalOptions,
    EvaluationError,
    FrameSource,
    check_file,
)
from pcavs.eval.metrics import csim
from pcavs.eval.scan import FrameSeries, scan_video
from pcavs.eval.scores import VideoScores, aggregate, format_table, nanmean_or_none
from pcavs.eval.sync import ContrastiveSync, SyncResult, measure_sync
from pcavs.eval.syncnet import LSEResult, SyncNetScorer
from pcavs.eval.tracking import (
    FaceTrack,
    analyzer_for,
    clip_pose_angles,
    landmark_scores,
    pose_scores,
    source_name,
    track_video,
)
from pcavs.face import (
    FaceAnalyzer,
)
from pcavs.media import MediaError, probe_video, read_audio, read_image, read_video_frames

__all__ = [
    "CROP_SIZE",
    "LSEResult",
    "SyncResult",
    "METRICS",
    "EvalOptions",
    "EvaluationError",
    "FaceTrack",
    "FrameSeries",
    "VideoScores",
    "aggregate",
    "clip_pose_angles",
    "evaluate_video",
    "format_table",
    "identity_embedding",
    "load_wave",
    "landmark_scores",
    "pose_scores",
    "scan_video",
    "track_video",
]


# ----------------------------------------------------------------------------------------- inputs
def identity_embedding(
    identity: str | os.PathLike[str] | np.ndarray,
    analyzer: FaceAnalyzer | None = None,
    options: EvalOptions = EvalOptions(),
) -> np.ndarray:
    """dlib descriptor of the largest face in an identity photo (a path or an RGB uint8 array)."""
    an = analyzer_for(options, analyzer)
    if isinstance(identity, np.ndarray):
        image, name = identity, "the identity image"
    else:
        p = check_file(identity, "identity photo")
        name = str(p)
        image = read_image(p) if p.suffix.lower() in IMAGE_SUFFIXES else next(read_video_frames(p, fps=options.fps))
    lm = an.landmarks(image, name=name)
    return an.embedding(image, lm)


def load_wave(audio: str | os.PathLike[str] | np.ndarray | None, generated: FrameSource,
               notes: list[str]) -> np.ndarray | None:
    if isinstance(audio, np.ndarray):
        return np.asarray(audio, dtype=np.float32)
    if audio is not None:
        return read_audio(check_file(audio, "audio file"))
    if isinstance(generated, str | os.PathLike):
        try:
            if probe_video(generated).has_audio:
                return read_audio(generated)
        except MediaError as exc:
            notes.append(f"audio of {generated} unreadable ({exc}); sync not measured")
            return None
        notes.append(f"{generated} has no audio track and no --audio was given; sync not measured")
    return None


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
            check_file(src, role)
    an = analyzer_for(options, analyzer)
    scores = VideoScores(generated=source_name(generated),
                         reference=None if reference is None else source_name(reference))  # fmt: skip
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
        scores.identity = source_name(identity) if not isinstance(identity, np.ndarray) else "the identity image"
    wave = load_wave(audio, generated, notes)
    if wave is not None:
        scores.audio = source_name(audio) if isinstance(audio, str | os.PathLike) else (
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
        scores.ssim = nanmean_or_none(series.ssim)
        scores.psnr = nanmean_or_none(np.minimum(series.psnr, options.psnr_cap)) if series.psnr is not None else None
    scores.cpbd = nanmean_or_none(series.cpbd)

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
            scores.csim = nanmean_or_none(np.atleast_1d(csim(series.embeddings[found], id_emb)))
        else:
            notes.append("no face detected in the generated video; CSIM not measured")

    # --- pose
    pose_src = reference if pose_source is None else pose_source
    if pose_src is not None:
        pose_track = ref if (pose_source is None or _same_file(pose_source, reference)) else track_video(
            pose_source, options=options, analyzer=an)
        assert pose_track is not None
        scores.pose_source = source_name(pose_src)
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
