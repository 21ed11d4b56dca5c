"""Per-frame quality analysis of one talking-face video, and the flags that put it into words.

What is measured per frame (see :mod:`pcavs.eval.evaluate` for the machinery):

* whether a face was detected;
* identity similarity: cosine similarity of dlib face descriptors to the identity photo, or, without
  one, to the video's own average face (then it measures identity *drift*);
* sharpness: variance of the Laplacian of the aligned face crop (fast and smooth over time), and CPBD;
* lip sync (with PC-AVS weights): the contrastive sync score in a window sliding over the video,
  giving a local offset and confidence, and the offset of the whole video; with ``--syncnet`` also
  SyncNet's LSE-C/LSE-D and its offset.

The flags turn these curves into sentences a person can act on, with frame numbers (counted from 0)
and times, e.g. "no face found in frames 10-12 (0.40-0.52 s)". :mod:`pcavs.eval.report` writes them
as a page, with the plots of :mod:`pcavs.eval.report_plots`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pcavs.eval.common import EvalOptions, EvaluationError, FrameSource
from pcavs.eval.evaluate import identity_embedding, load_wave
from pcavs.eval.metrics import csim
from pcavs.eval.scan import scan_video
from pcavs.eval.sync import ContrastiveSync, SlidingSync, SyncResult, measure_sync, sliding_sync
from pcavs.eval.syncnet import LSEResult, SyncNetScorer
from pcavs.eval.tracking import analyzer_for, source_name, track_video
from pcavs.face import FaceAnalyzer

__all__ = [
    "SEVERITY_ORDER",
    "Flag",
    "ReportOptions",
    "VideoAnalysis",
    "analyze_video",
    "bridge_runs",
    "frame_runs",
    "quality_flags",
]

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2, "ok": 3}


@dataclass(frozen=True)
class ReportOptions:
    """Thresholds behind the flags."""

    sync_window: int = 25  # frames per sliding sync window (1 s at 25 fps)
    min_sync_confidence: float = 0.05  # contrastive confidence below this: "the lips do not clearly follow"
    min_lse_c: float = 3.0  # SyncNet confidence below this is commonly read as poor sync (real videos: ~6-8)
    # Cosine similarity of dlib descriptors below which a face probably is another person: dlib's own
    # rule is a Euclidean distance of 0.6, and its descriptors have a norm of ~1.4-1.5, so
    # cos = 1 - 0.6^2 / (2 * 1.45^2) ~ 0.91.
    identity_threshold: float = 0.9
    blur_ratio: float = 0.5  # a frame whose sharpness is below this fraction of the median is "much blurrier"
    max_thumbnails: int = 8


@dataclass
class VideoAnalysis:
    """Per-frame measurements of one video."""

    video: str
    fps: int
    num_frames: int
    frame_size: tuple[int, int]
    face_found: np.ndarray  # (T,) bool
    identity_similarity: np.ndarray  # (T,) NaN where not measured
    identity_reference: str | None  # what the similarity is measured against
    sharpness: np.ndarray  # (T,) variance of the Laplacian of the face crop
    cpbd: np.ndarray  # (T,)
    audio: str | None = None
    sync: SyncResult | None = None
    sliding: SlidingSync | None = None
    lse: LSEResult | None = None
    notes: list[str] = field(default_factory=list)
    taken_as_crops: bool = False  # the frames are the face crops (evaluate.frames_are_crops, one rule)

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps


@dataclass
class Flag:
    """One finding, in plain language."""

    kind: str  # no_face, sync_offset, weak_sync, sync_drift, syncnet, identity, blur, all_good, ...
    severity: str  # error, warning, info or ok
    message: str
    frames: list[tuple[int, int]] = field(default_factory=list)  # inclusive ranges, counted from 0


# ------------------------------------------------------------------------------------------ analysis
def analyze_video(
    video: FrameSource,
    *,
    audio: str | os.PathLike[str] | np.ndarray | None = None,
    identity: str | os.PathLike[str] | np.ndarray | None = None,
    sync: ContrastiveSync | None = None,
    syncnet: SyncNetScorer | None = None,
    options: EvalOptions | None = None,
    report_options: ReportOptions | None = None,
    analyzer: FaceAnalyzer | None = None,
) -> VideoAnalysis:
    """Measure everything the report shows, frame by frame."""
    options = options or EvalOptions()
    report_options = report_options or ReportOptions()
    if isinstance(video, str | os.PathLike) and not Path(video).is_file():
        raise EvaluationError(f"{video}: video not found; check the path")
    an = analyzer_for(options, analyzer)
    track = track_video(video, aligned=options.generated_aligned, options=options, analyzer=an, require_face=False)
    notes = list(track.notes)
    id_emb, id_ref = None, None
    if identity is not None:
        id_emb = identity_embedding(identity, an, options)
        id_ref = ("the identity image" if isinstance(identity, np.ndarray)
                  else f"the identity photo {source_name(identity)}")  # fmt: skip
    wave = load_wave(audio, video, notes)
    series = scan_video(video, track, sync=sync if wave is not None else None,
                        syncnet=syncnet if wave is not None else None, options=options, analyzer=an)
    found = np.isfinite(series.embeddings).all(axis=1)
    sim = np.full(track.num_frames, np.nan)
    if id_emb is None and found.sum() >= 2:
        id_emb = series.embeddings[found].mean(axis=0)
        id_ref = "the video's own average face"
    if id_emb is not None and found.any():
        sim[found] = np.atleast_1d(csim(series.embeddings[found], id_emb))
    res, slide, lse = None, None, None
    if wave is not None and sync is not None and series.visual is not None:
        res, feats, vis = measure_sync(sync, wave, series.visual, options.max_shift)
        slide = sliding_sync(feats, vis, report_options.sync_window, options.max_shift)
    if wave is not None and syncnet is not None and series.syncnet_frames:
        try:
            lse = syncnet.result(wave)
        except ValueError as exc:
            notes.append(f"SyncNet not run: {exc}")
    audio_name = None
    if wave is not None:
        audio_name = source_name(audio) if isinstance(audio, str | os.PathLike) else (
            "the audio array" if audio is not None else "the video's own audio")
    return VideoAnalysis(
        video=source_name(video), fps=options.fps, num_frames=track.num_frames, frame_size=track.frame_size,
        face_found=track.detected | track.taken_as_crops, identity_similarity=sim, identity_reference=id_ref,
        sharpness=series.sharpness, cpbd=series.cpbd, audio=audio_name, sync=res, sliding=slide, lse=lse,
        notes=notes, taken_as_crops=track.taken_as_crops,
    )


# ------------------------------------------------------------------------------------------ flags
def frame_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (start, end) index ranges where ``mask`` is True."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(np.int8))
    return list(zip(np.flatnonzero(d == 1).tolist(), (np.flatnonzero(d == -1) - 1).tolist(), strict=True))


def bridge_runs(runs: list[tuple[int, int]], measured: np.ndarray) -> list[tuple[int, int]]:
    """Join runs separated only by unmeasured frames (e.g. an embedding stride > 1)."""
    out: list[tuple[int, int]] = []
    for a, b in runs:
        if out and not measured[out[-1][1] + 1 : a].any():
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _frames_text(runs: Sequence[tuple[int, int]], fps: int, limit: int = 4) -> str:
    parts = []
    for a, b in runs[:limit]:
        t0, t1 = a / fps, (b + 1) / fps
        parts.append(f"frame {a} ({t0:.2f} s)" if a == b else f"frames {a}-{b} ({t0:.2f}-{t1:.2f} s)")
    text = ", ".join(parts)
    if len(runs) > limit:
        text += f" and {len(runs) - limit} more stretch{'es' if len(runs) - limit > 1 else ''}"
    return text


def _offset_sentence(offset: int, fps: int) -> str:
    ms = abs(offset) * 1000.0 / fps
    n = abs(offset)
    lead = "the picture leads the sound" if offset > 0 else "the sound leads the picture"
    return f"audio and video are out of sync by {n} frame{'s' if n != 1 else ''} ({ms:.0f} ms): {lead}"


def quality_flags(a: VideoAnalysis, opts: ReportOptions | None = None) -> list[Flag]:
    """Findings of an analysis, most serious first."""
    opts = opts or ReportOptions()
    flags: list[Flag] = []
    t, fps = a.num_frames, a.fps
    # --- faces
    missing = frame_runs(~a.face_found)
    if a.taken_as_crops:
        flags.append(Flag("aligned_crops", "info", "the frames are taken as aligned face crops (declared with "
                          "--aligned, or a square video in which no face was found, as pcavs evaluate does)"))
    if not a.face_found.any():
        flags.append(Flag("no_face", "error", f"no face found in any of the {t} frames; nothing face-related "
                          "could be measured", [(0, t - 1)]))
    elif missing:
        n = int((~a.face_found).sum())
        flags.append(Flag("no_face", "warning", f"no face found in {_frames_text(missing, fps)} "
                          f"({n} of {t} frames)", missing))
    # --- sync (ours)
    if a.sync is None:
        flags.append(Flag("sync_unmeasured", "info", "lip sync was not measured: it needs PC-AVS weights "
                          "(--weights) and a sound track"))
    else:
        conf, off = a.sync.confidence, a.sync.offset
        # the expert's calibrated threshold where it has one, else the report's option
        min_conf = a.sync.threshold if a.sync.threshold is not None else opts.min_sync_confidence
        by = f" (sync expert: {a.sync.expert})" if a.sync.expert else ""
        if conf < min_conf:
            flags.append(Flag("weak_sync", "warning", f"lip-sync offset unreliable: the lips do not clearly follow "
                              f"the sound, sync confidence {conf:.3f} is below {min_conf:.3g}{by}, so no offset is "
                              "given"))
        elif off != 0:
            flags.append(Flag("sync_offset", "warning", f"{_offset_sentence(off, fps)} (confidence {conf:.3f}){by}"))
        else:
            flags.append(Flag("sync_ok", "ok", f"audio and video are in sync (offset 0, confidence {conf:.3f}){by}"))
        if a.sliding is not None and conf >= min_conf and a.sliding.offsets.size > 1:
            w = a.sliding.window
            starts = np.round(a.sliding.centres - (w - 1) / 2).astype(int)

            def covered(mask: np.ndarray) -> list[tuple[int, int]]:
                # a stretch must hold for half a window of positions, or it is noise
                cover = np.zeros(t, bool)
                for s0, s1 in frame_runs(mask):
                    if s1 - s0 + 1 >= max(1, w // 2):
                        cover[starts[s0] : starts[s1] + w] = True
                return frame_runs(cover)

            weak = covered(a.sliding.confidences < min_conf)
            if weak:
                flags.append(Flag("weak_sync_local", "warning", f"lip sync is weak in {_frames_text(weak, fps)}",
                                  weak))
            drift_mask = (a.sliding.offsets != off) & (a.sliding.confidences >= min_conf)
            drift = covered(drift_mask)
            if drift:
                local = int(np.median(a.sliding.offsets[drift_mask]))
                flags.append(Flag("sync_drift", "warning", f"the sync changes over time: in {_frames_text(drift, fps)} "
                                  f"the best offset is {local:+d} frames instead of {off:+d}", drift))
    # --- SyncNet
    if a.lse is not None:
        verdict = (f"SyncNet: LSE-C {a.lse.lse_c:.2f}, LSE-D {a.lse.lse_d:.2f}, offset {a.lse.av_offset:+d} frames "
                   "(SyncNet's sign: positive means the sound comes early)")
        if a.lse.lse_c < opts.min_lse_c:
            flags.append(Flag("syncnet", "warning", f"{verdict}; a confidence below {opts.min_lse_c:g} usually means "
                              "poor lip sync"))
        elif a.lse.av_offset != 0:
            flags.append(Flag("syncnet", "warning", f"{verdict}; {_offset_sentence(-a.lse.av_offset, fps)}"))
        else:
            flags.append(Flag("syncnet", "ok", verdict))
    # --- identity
    sim = a.identity_similarity
    measured = np.isfinite(sim)
    if measured.any():
        low = measured & (sim < opts.identity_threshold)
        if low.any():
            runs = bridge_runs(frame_runs(low), measured)
            worst = int(np.nanargmin(np.where(low, sim, np.nan)))
            against = f" (compared with {a.identity_reference})" if a.identity_reference else ""
            flags.append(Flag("identity", "warning", f"identity similarity drops below {opts.identity_threshold:g} "
                              f"in {_frames_text(runs, fps)}; lowest {sim[worst]:.2f} at frame {worst}{against}",
                              runs))
    # --- blur (only frames with a face: a face-less frame is flagged above, and its crop means nothing)
    sharp = a.sharpness
    ok = a.face_found & np.isfinite(sharp)
    if ok.sum() >= 3:
        med = float(np.median(sharp[ok]))
        blurry = ok & (sharp < opts.blur_ratio * med)
        if blurry.any() and med > 0:
            runs = frame_runs(blurry)
            ratio = float(np.median(sharp[blurry]) / med)
            verb = "is" if len(runs) == 1 and runs[0][0] == runs[0][1] else "are"
            flags.append(Flag("blur", "warning", f"{_frames_text(runs, fps)} {verb} much blurrier than the rest "
                              f"(sharpness {100 * ratio:.0f}% of the video's median)", runs))
    if not any(f.severity in ("error", "warning") for f in flags):
        flags.append(Flag("all_good", "ok", "no problems found"))
    flags.sort(key=lambda f: SEVERITY_ORDER[f.severity])
    return flags
