"""Per-frame quality report of one talking-face video: ``index.html`` + PNG plots + ``report.json``.

:func:`make_report` measures the video (:func:`pcavs.eval.quality.analyze_video`), turns the curves
into findings (:func:`pcavs.eval.quality.quality_flags`), draws them (:mod:`pcavs.eval.report_plots`)
and writes the folder: the page, its plots, thumbnails of flagged frames and every number as JSON.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pcavs.eval.common import EvalOptions, EvaluationError
from pcavs.eval.quality import Flag, ReportOptions, VideoAnalysis, analyze_video, quality_flags
from pcavs.eval.report_plots import plot_faces, plot_identity, plot_sharpness, plot_shifts, plot_sync
from pcavs.eval.sync import ContrastiveSync
from pcavs.eval.syncnet import SyncNetScorer
from pcavs.face import FaceAnalyzer
from pcavs.fileio import atomic_write_text, write_json
from pcavs.media import read_video_frames

__all__ = ["make_report", "write_report"]


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
    plot_faces(a, out / "faces.png")
    plots.append(("faces.png", "Face detection", "Each bar is a frame: green where a face was found, red where not."))
    if a.sync is not None and a.sliding is not None:
        plot_sync(a, opts, out / "sync.png")
        plots.append(("sync.png", "Lip sync over time",
                      f"Top: how clearly the mouth follows the sound in a {a.sliding.window}-frame window around each "
                      "frame (higher is better). Bottom: the shift between picture and sound that fits best there; "
                      "0 is perfect, positive means the picture leads the sound."))
        plot_shifts(a, out / "sync_offset.png")
        plots.append(("sync_offset.png", "Audio-video offset",
                      "Mean audio-visual similarity for every shift between picture and sound over the whole video; "
                      "the peak is the offset."))
    if np.isfinite(a.identity_similarity).any():
        plot_identity(a, opts, out / "identity.png")
        plots.append(("identity.png", "Identity similarity over time",
                      f"Cosine similarity of each frame's face descriptor to {a.identity_reference}; below "
                      f"{opts.identity_threshold:g} the face probably looks like someone else."))
    plot_sharpness(a, opts, out / "sharpness.png")
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
