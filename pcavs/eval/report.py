"""Per-frame quality report of one talking-face video: ``index.html`` + PNG plots + ``report.json``.

What is measured per frame (see :mod:`pcavs.eval.evaluate` for the machinery):

* whether a face was detected;
* identity similarity: cosine similarity of dlib face descriptors to the identity photo, or, without
  one, to the video's own average face (then it measures identity *drift*);
* sharpness: variance of the Laplacian of the aligned face crop (fast and smooth over time), and CPBD;
* lip sync (with PC-AVS weights): the contrastive sync score in a window sliding over the video,
  giving a local offset and confidence, and the offset of the whole video; with ``--syncnet`` also
  SyncNet's LSE-C/LSE-D and its offset.

The flags turn these curves into sentences a person can act on, with frame numbers (counted from 0)
and times, e.g. "no face found in frames 10-12 (0.40-0.52 s)".
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pcavs.eval.evaluate import (
    EvalOptions,
    EvaluationError,
    FrameSource,
    _analyzer,
    _load_wave,
    _name,
    identity_embedding,
    scan_video,
    track_video,
)
from pcavs.eval.metrics import csim
from pcavs.eval.sync import ContrastiveSync, LSEResult, SlidingSync, SyncNetScorer, SyncResult, measure_sync
from pcavs.eval.sync import sliding_sync as _sliding_sync
from pcavs.face import FaceAnalyzer
from pcavs.fileio import atomic_write_text, write_json
from pcavs.media import read_video_frames

__all__ = [
    "Flag",
    "ReportOptions",
    "VideoAnalysis",
    "analyze_video",
    "make_report",
    "quality_flags",
    "write_report",
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
    an = _analyzer(options, analyzer)
    track = track_video(video, aligned=options.generated_aligned, options=options, analyzer=an, require_face=False)
    notes = list(track.notes)
    id_emb, id_ref = None, None
    if identity is not None:
        id_emb = identity_embedding(identity, an, options)
        id_ref = "the identity image" if isinstance(identity, np.ndarray) else f"the identity photo {_name(identity)}"
    wave = _load_wave(audio, video, notes)
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
        slide = _sliding_sync(feats, vis, report_options.sync_window, options.max_shift)
    if wave is not None and syncnet is not None and series.syncnet_frames:
        try:
            lse = syncnet.result(wave)
        except ValueError as exc:
            notes.append(f"SyncNet not run: {exc}")
    audio_name = None
    if wave is not None:
        audio_name = _name(audio) if isinstance(audio, str | os.PathLike) else (
            "the audio array" if audio is not None else "the video's own audio")
    return VideoAnalysis(
        video=_name(video), fps=options.fps, num_frames=track.num_frames, frame_size=track.frame_size,
        face_found=track.detected | track.taken_as_crops, identity_similarity=sim, identity_reference=id_ref,
        sharpness=series.sharpness, cpbd=series.cpbd, audio=audio_name, sync=res, sliding=slide, lse=lse,
        notes=notes, taken_as_crops=track.taken_as_crops,
    )


# ------------------------------------------------------------------------------------------ flags
def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (start, end) index ranges where ``mask`` is True."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(np.int8))
    return list(zip(np.flatnonzero(d == 1).tolist(), (np.flatnonzero(d == -1) - 1).tolist(), strict=True))


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
    missing = _runs(~a.face_found)
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
                for s0, s1 in _runs(mask):
                    if s1 - s0 + 1 >= max(1, w // 2):
                        cover[starts[s0] : starts[s1] + w] = True
                return _runs(cover)

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
            runs = _bridge(_runs(low), measured)
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
            runs = _runs(blurry)
            ratio = float(np.median(sharp[blurry]) / med)
            verb = "is" if len(runs) == 1 and runs[0][0] == runs[0][1] else "are"
            flags.append(Flag("blur", "warning", f"{_frames_text(runs, fps)} {verb} much blurrier than the rest "
                              f"(sharpness {100 * ratio:.0f}% of the video's median)", runs))
    if not any(f.severity in ("error", "warning") for f in flags):
        flags.append(Flag("all_good", "ok", "no problems found"))
    flags.sort(key=lambda f: SEVERITY_ORDER[f.severity])
    return flags


def _bridge(runs: list[tuple[int, int]], measured: np.ndarray) -> list[tuple[int, int]]:
    """Join runs separated only by unmeasured frames (e.g. an embedding stride > 1)."""
    out: list[tuple[int, int]] = []
    for a, b in runs:
        if out and not measured[out[-1][1] + 1 : a].any():
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


# ------------------------------------------------------------------------------------------ plots
def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window, works without a display
    import matplotlib.pyplot as plt

    return plt


def _shade(ax: Any, runs: Sequence[tuple[int, int]], color: str, label: str | None = None) -> None:
    for k, (a, b) in enumerate(runs):
        ax.axvspan(a - 0.5, b + 0.5, color=color, alpha=0.18, lw=0, label=label if k == 0 else None)


def _seconds_axis(ax: Any, fps: int) -> None:
    sec = ax.secondary_xaxis("top", functions=(lambda f: f / fps, lambda s: s * fps))
    sec.set_xlabel("seconds", fontsize=8)
    sec.tick_params(labelsize=8)


def _style(ax: Any, t: int, legend: bool = True) -> None:
    ax.set_xlim(-0.5, t - 0.5)
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=8)
    if legend:
        # beside the plot, never on top of the data; constrained layout makes room for it
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _figure(rows: int, height: float, **kw: Any) -> tuple[Any, Any]:
    plt = _plt()
    # one width for every plot, so the frame axes line up on the page
    return plt.subplots(rows, 1, figsize=(10.5, height), dpi=100, layout="constrained", **kw)


def _save(fig: Any, path: Path) -> None:
    fig.savefig(path)
    _plt().close(fig)


def _plot_faces(a: VideoAnalysis, path: Path) -> None:
    from matplotlib.patches import Patch

    fig, ax = _figure(1, 1.9)
    t = a.num_frames
    strip = np.where(a.face_found[None, :, None], [0.23, 0.61, 0.36], [0.85, 0.33, 0.31])
    ax.imshow(strip, aspect="auto", extent=(-0.5, t - 0.5, 0, 1), interpolation="nearest")
    ax.set_yticks([])
    ax.set_xlabel("frame", fontsize=9)
    ax.set_xlim(-0.5, t - 0.5)
    ax.tick_params(labelsize=8)
    _seconds_axis(ax, a.fps)
    ax.legend(handles=[Patch(color="#3a9b5b", label="face found"), Patch(color="#d9534f", label="no face")],
              fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    _save(fig, path)


def _plot_sync(a: VideoAnalysis, opts: ReportOptions, path: Path) -> None:
    assert a.sync is not None and a.sliding is not None
    fig, axes = _figure(2, 4.8, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    s, t = a.sliding, a.num_frames
    no_face = _runs(~a.face_found)
    ax = axes[0]
    ax.plot(s.centres, s.confidences, color="#1f6fb2", lw=1.6, label=f"confidence\n({s.window}-frame window)")
    ax.axhline(opts.min_sync_confidence, color="#d9534f", ls="--", lw=1,
               label=f"weak below {opts.min_sync_confidence:g}")
    _shade(ax, no_face, "#888888", "no face")
    ax.set_ylabel("sync confidence", fontsize=9)
    _style(ax, t)
    _seconds_axis(ax, a.fps)
    ax = axes[1]
    ax.step(s.centres, s.offsets, where="mid", color="#1f6fb2", lw=1.4, label="best offset\nin the window")
    ax.axhline(a.sync.offset, color="#444444", ls=":", lw=1.4, label=f"whole video: {a.sync.offset:+d}")
    ax.axhline(0, color="#3a9b5b", lw=0.8, alpha=0.6)
    _shade(ax, no_face, "#888888")
    ax.set_ylabel("offset (frames)", fontsize=9)
    ax.set_xlabel("frame", fontsize=9)
    lim = max(3, int(np.max(np.abs(s.offsets))) + 1, abs(a.sync.offset) + 1)
    ax.set_ylim(-lim, lim)
    _style(ax, t)
    _save(fig, path)


def _plot_shifts(a: VideoAnalysis, path: Path) -> None:
    assert a.sync is not None
    fig, ax = _figure(1, 2.9)
    k, sc = a.sync.shifts, a.sync.scores
    finite = np.isfinite(sc)
    ax.plot(k[finite], sc[finite], "o-", color="#1f6fb2", ms=3.5, lw=1.2, label="mean similarity")
    ax.axvline(a.sync.offset, color="#d9534f" if a.sync.offset else "#3a9b5b", lw=1.4,
               label=f"best: {a.sync.offset:+d} frames\n({a.sync.offset * 1000 / a.fps:+.0f} ms)")
    ax.axhline(float(np.median(sc[finite])), color="#888888", ls=":", lw=1, label="median")
    ax.set_xlabel("shift k (frames): the mouth at frame t is compared with the sound at frame t + k", fontsize=9)
    ax.set_ylabel("mean similarity", fontsize=9)
    ax.set_xlim(k[0] - 0.5, k[-1] + 0.5)
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    _save(fig, path)


def _plot_identity(a: VideoAnalysis, opts: ReportOptions, path: Path) -> None:
    fig, ax = _figure(1, 2.9)
    t, sim = a.num_frames, a.identity_similarity
    x = np.arange(t)
    ok = np.isfinite(sim)
    ax.plot(x[ok], sim[ok], ".-", color="#1f6fb2", lw=1.2, ms=3, label="identity similarity")
    ax.axhline(opts.identity_threshold, color="#d9534f", ls="--", lw=1, label=f"threshold {opts.identity_threshold:g}")
    _shade(ax, _bridge(_runs(ok & (sim < opts.identity_threshold)), ok), "#d9534f", "below threshold")
    _shade(ax, _runs(~a.face_found), "#888888", "no face")
    lo = min(opts.identity_threshold - 0.05, float(np.nanmin(sim)) - 0.02) if ok.any() else 0.0
    ax.set_ylim(max(lo, -1.0), 1.005)
    ax.set_ylabel("cosine similarity", fontsize=9)
    ax.set_xlabel("frame", fontsize=9)
    _style(ax, t)
    _seconds_axis(ax, a.fps)
    _save(fig, path)


def _plot_sharpness(a: VideoAnalysis, opts: ReportOptions, path: Path) -> None:
    fig, axes = _figure(2, 4.6, sharex=True)
    t = a.num_frames
    x = np.arange(t)
    ok = a.face_found & np.isfinite(a.sharpness)
    ax = axes[0]
    ax.plot(x, a.sharpness, color="#1f6fb2", lw=1.3, label="sharpness\n(Laplacian variance)")
    if ok.sum() >= 3:
        med = float(np.median(a.sharpness[ok]))
        ax.axhline(med, color="#888888", ls=":", lw=1, label="median")
        ax.axhline(opts.blur_ratio * med, color="#d9534f", ls="--", lw=1,
                   label=f"blurry below {100 * opts.blur_ratio:.0f}%\nof the median")
        _shade(ax, _runs(ok & (a.sharpness < opts.blur_ratio * med)), "#d9534f", "much blurrier")
    _shade(ax, _runs(~a.face_found), "#888888", "no face")
    ax.set_ylabel("sharpness", fontsize=9)
    ax.set_ylim(bottom=0)
    _style(ax, t)
    _seconds_axis(ax, a.fps)
    ax = axes[1]
    ax.plot(x, a.cpbd, color="#7b4fa0", lw=1.3, label="CPBD")
    ax.set_ylabel("CPBD", fontsize=9)
    ax.set_xlabel("frame", fontsize=9)
    ax.set_ylim(bottom=0)
    _style(ax, t)
    _save(fig, path)


# ------------------------------------------------------------------------------------------ output


def _summary(a: VideoAnalysis) -> dict[str, Any]:
    sim = a.identity_similarity[np.isfinite(a.identity_similarity)]
    out: dict[str, Any] = {
        "frames": a.num_frames,
        "duration_s": a.duration,
        "faces_found": int(a.face_found.sum()),
        "identity_similarity_mean": float(sim.mean()) if sim.size else None,
        "identity_similarity_min": float(sim.min()) if sim.size else None,
        "identity_reference": a.identity_reference,
        "sharpness_median": float(np.nanmedian(a.sharpness)) if np.isfinite(a.sharpness).any() else None,
        "cpbd_mean": float(np.nanmean(a.cpbd)) if np.isfinite(a.cpbd).any() else None,
        "sync_offset": a.sync.offset if a.sync and a.sync.reliable else None,
        "sync_offset_ms": a.sync.offset * 1000.0 / a.fps if a.sync and a.sync.reliable else None,
        "sync_confidence": a.sync.confidence if a.sync else None,
        "sync_reliable": a.sync.reliable if a.sync else None,
        "sync_expert": a.sync.expert if a.sync else None,
        "lse_d": a.lse.lse_d if a.lse else None,
        "lse_c": a.lse.lse_c if a.lse else None,
        "syncnet_offset": a.lse.av_offset if a.lse else None,
    }
    return out


def _thumbnails(a: VideoAnalysis, flags: Sequence[Flag], out: Path, limit: int) -> list[tuple[int, str, str]]:
    """Save the first frame of each flagged stretch (whole frame, 160 px high); (frame, file, caption)."""
    wanted: dict[int, str] = {}
    for f in flags:
        if f.severity not in ("error", "warning"):
            continue
        for s, e in f.frames:
            mid = (s + e) // 2
            if mid not in wanted and len(wanted) < limit:
                wanted[mid] = f.kind.replace("_", " ")
    if not wanted or not Path(a.video).is_file():
        return []
    (out / "frames").mkdir(exist_ok=True)
    saved = []
    frames = read_video_frames(a.video, fps=a.fps)
    try:
        for i, frame in enumerate(frames):
            if i > max(wanted):
                break
            if i in wanted:
                im = Image.fromarray(frame)
                im.thumbnail((int(160 * frame.shape[1] / frame.shape[0]), 160), Image.BOX)
                name = f"frames/frame_{i:05d}.png"
                im.save(out / name)
                saved.append((i, name, wanted[i]))
    finally:
        frames.close()
    return saved


_CSS = """
body{font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:0;background:#f4f5f7;color:#222}
main{max-width:1040px;margin:0 auto;padding:24px 28px 40px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 6px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;font-size:13px;margin-bottom:18px;word-break:break-all}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:10px}
.card{background:#fff;border-radius:8px;padding:10px 12px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card .k{font-size:12px;color:#666} .card .v{font-size:19px;font-weight:600;margin-top:2px}
.card .d{font-size:11.5px;color:#777;margin-top:2px}
ul.flags{list-style:none;padding:0;margin:0}
ul.flags li{background:#fff;border-left:5px solid #999;border-radius:4px;margin:6px 0;padding:8px 12px;font-size:14.5px;
box-shadow:0 1px 2px rgba(0,0,0,.06)}
li.error{border-color:#c9302c} li.warning{border-color:#e6a23c}
li.info{border-color:#5b8def} li.ok{border-color:#3a9b5b}
.sev{display:inline-block;min-width:62px;font-size:11px;font-weight:700;text-transform:uppercase;letter-spacing:.04em}
li.error .sev{color:#c9302c} li.warning .sev{color:#b7791f} li.info .sev{color:#3b6fd8} li.ok .sev{color:#2f7d4a}
figure{background:#fff;border-radius:8px;margin:10px 0;padding:10px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
figure img{width:100%;display:block} figcaption{font-size:13px;color:#555;margin:4px 4px 8px}
.thumbs{display:flex;flex-wrap:wrap;gap:10px} .thumbs figure{margin:0;padding:6px} .thumbs img{height:160px;width:auto}
.thumbs figcaption{margin:4px 2px 0;font-size:12px}
.notes{font-size:12.5px;color:#666} footer{font-size:12px;color:#777;margin-top:30px}
"""


def _card(key: str, value: str, detail: str = "") -> str:
    d = f'<div class="d">{html.escape(detail)}</div>' if detail else ""
    return (f'<div class="card"><div class="k">{html.escape(key)}</div>'
            f'<div class="v">{html.escape(value)}</div>{d}</div>')


def _html(a: VideoAnalysis, flags: Sequence[Flag], plots: Sequence[tuple[str, str, str]],
          thumbs: Sequence[tuple[int, str, str]], opts: ReportOptions) -> str:
    s = _summary(a)
    h, w = a.frame_size
    cards = [
        _card("Length", f"{a.duration:.2f} s", f"{a.num_frames} frames at {a.fps} fps"),
        _card("Faces found", f"{s['faces_found']} / {a.num_frames}",
              f"{100 * s['faces_found'] / max(a.num_frames, 1):.0f}% of the frames"),
    ]
    if a.sync is not None and not a.sync.reliable:
        cards.append(_card("Lip-sync offset", "unreliable",
                           f"confidence {a.sync.confidence:.3f} below {a.sync.threshold:.3f}; expert: {a.sync.expert}"))
    elif a.sync is not None:
        cards.append(_card("Lip-sync offset", f"{a.sync.offset:+d} frames",
                           f"{a.sync.offset * 1000 / a.fps:+.0f} ms; confidence {a.sync.confidence:.3f}; "
                           f"expert: {a.sync.expert}"))
    else:
        cards.append(_card("Lip sync", "not measured", "needs --weights and a sound track"))
    if a.lse is not None:
        cards.append(_card("SyncNet", f"LSE-C {a.lse.lse_c:.2f}",
                           f"LSE-D {a.lse.lse_d:.2f}, offset {a.lse.av_offset:+d}"))
    if s["identity_similarity_mean"] is not None:
        cards.append(_card("Identity similarity", f"{s['identity_similarity_mean']:.3f}",
                           f"lowest {s['identity_similarity_min']:.3f}; vs {a.identity_reference}"))
    if s["cpbd_mean"] is not None:
        cards.append(_card("Sharpness", f"CPBD {s['cpbd_mean']:.3f}",
                           f"median Laplacian variance {s['sharpness_median']:.0f}"))
    flag_items = "".join(
        f'<li class="{f.severity}"><span class="sev">{f.severity}</span> {html.escape(f.message)}</li>' for f in flags
    )
    thumb_html = ""
    if thumbs:
        items = "".join(
            f'<figure><img src="{html.escape(p)}" alt="frame {i}"><figcaption>frame {i} ({i / a.fps:.2f} s): '
            f"{html.escape(c)}</figcaption></figure>"
            for i, p, c in thumbs
        )
        thumb_html = f'<h2>Flagged frames</h2><div class="thumbs">{items}</div>'
    figs = "".join(
        f'<h2>{html.escape(title)}</h2><figure><figcaption>{html.escape(cap)}</figcaption>'
        f'<img src="{html.escape(p)}" alt="{html.escape(title)}"></figure>'
        for p, title, cap in plots
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in a.notes)
    notes_html = f'<h2>Notes</h2><ul class="notes">{notes}</ul>' if notes else ""
    audio = f" &middot; audio: {html.escape(a.audio)}" if a.audio else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Quality report: {html.escape(Path(a.video).name)}</title>
<style>{_CSS}</style></head><body><main>
<h1>Quality report: {html.escape(Path(a.video).name)}</h1>
<div class="sub">{html.escape(a.video)} &middot; {w}x{h}{audio}</div>
<div class="cards">{''.join(cards)}</div>
<h2>Findings</h2><ul class="flags">{flag_items}</ul>
{thumb_html}
{figs}
{notes_html}
<footer>Frames are counted from 0. Thresholds: sync confidence {opts.min_sync_confidence:g}, identity
{opts.identity_threshold:g}, blur {100 * opts.blur_ratio:.0f}% of the median sharpness. All numbers are in
<a href="report.json">report.json</a>. Made by pcavs report.</footer>
</main></body></html>
"""


def write_report(a: VideoAnalysis, out_dir: str | os.PathLike[str], opts: ReportOptions | None = None,
                 flags: Sequence[Flag] | None = None) -> Path:
    """Write ``index.html``, the PNG plots, flagged-frame thumbnails and ``report.json``; returns the HTML path."""
    opts = opts or ReportOptions()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise EvaluationError(f"{out}: exists and is not a folder; choose another -o")
    out.mkdir(parents=True, exist_ok=True)
    flags = list(flags) if flags is not None else quality_flags(a, opts)
    plots: list[tuple[str, str, str]] = []
    _plot_faces(a, out / "faces.png")
    plots.append(("faces.png", "Face detection", "Each bar is a frame: green where a face was found, red where not."))
    if a.sync is not None and a.sliding is not None:
        _plot_sync(a, opts, out / "sync.png")
        plots.append(("sync.png", "Lip sync over time",
                      f"Top: how clearly the mouth follows the sound in a {a.sliding.window}-frame window around each "
                      "frame (higher is better). Bottom: the shift between picture and sound that fits best there; "
                      "0 is perfect, positive means the picture leads the sound."))
        _plot_shifts(a, out / "sync_offset.png")
        plots.append(("sync_offset.png", "Audio-video offset",
                      "Mean audio-visual similarity for every shift between picture and sound over the whole video; "
                      "the peak is the offset."))
    if np.isfinite(a.identity_similarity).any():
        _plot_identity(a, opts, out / "identity.png")
        plots.append(("identity.png", "Identity similarity over time",
                      f"Cosine similarity of each frame's face descriptor to {a.identity_reference}; below "
                      f"{opts.identity_threshold:g} the face probably looks like someone else."))
    _plot_sharpness(a, opts, out / "sharpness.png")
    plots.append(("sharpness.png", "Sharpness over time",
                  "Top: detail in the face crop (variance of the Laplacian); drops mark blurry frames. "
                  "Bottom: CPBD, the sharpness metric of the paper (0-1, higher is sharper)."))
    thumbs = _thumbnails(a, flags, out, opts.max_thumbnails)
    report = {
        "video": a.video,
        "audio": a.audio,
        "fps": a.fps,
        "frame_size": list(a.frame_size),
        "summary": _summary(a),
        "flags": [asdict(f) for f in flags],
        "per_frame": {
            "face_found": a.face_found,
            "identity_similarity": a.identity_similarity,
            "sharpness": a.sharpness,
            "cpbd": a.cpbd,
        },
        "sync": None if a.sync is None else {
            "offset": a.sync.offset if a.sync.reliable else None,
            "offset_ms": a.sync.offset * 1000.0 / a.fps if a.sync.reliable else None,
            "best_shift": a.sync.offset,  # the curve's peak, shown even when unreliable (for plots)
            "confidence": a.sync.confidence,
            "reliable": a.sync.reliable,
            "threshold": a.sync.threshold,
            "expert": a.sync.expert,
            "shifts": a.sync.shifts,
            "scores": a.sync.scores,
            "sliding": None if a.sliding is None else {
                "window": a.sliding.window,
                "centres": a.sliding.centres,
                "offsets": a.sliding.offsets,
                "confidences": a.sliding.confidences,
            },
        },
        "syncnet": None if a.lse is None else {
            "lse_d": a.lse.lse_d, "lse_c": a.lse.lse_c, "av_offset": a.lse.av_offset,
            "mean_dists": a.lse.mean_dists, "frame_confidence": a.lse.frame_conf,
        },
        "plots": [p for p, _, _ in plots],
        "thumbnails": [p for _, p, _ in thumbs],
        "notes": a.notes,
        "settings": asdict(opts),
    }
    write_json(out / "report.json", report)
    page = out / "index.html"
    atomic_write_text(page, _html(a, flags, plots, thumbs, opts))
    return page


def make_report(
    video: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    audio: str | os.PathLike[str] | None = None,
    identity: str | os.PathLike[str] | None = None,
    sync: ContrastiveSync | None = None,
    syncnet: SyncNetScorer | None = None,
    options: EvalOptions | None = None,
    report_options: ReportOptions | None = None,
    analyzer: FaceAnalyzer | None = None,
) -> tuple[Path, VideoAnalysis, list[Flag]]:
    """Analyse ``video`` and write the report folder; returns (index.html, analysis, flags)."""
    report_options = report_options or ReportOptions()
    a = analyze_video(video, audio=audio, identity=identity, sync=sync, syncnet=syncnet, options=options,
                      report_options=report_options, analyzer=analyzer)
    flags = quality_flags(a, report_options)
    return write_report(a, out_dir, report_options, flags), a, flags
