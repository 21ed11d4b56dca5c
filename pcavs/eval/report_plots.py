"""The PNG plots of a quality report (matplotlib, written to files only): faces, sync, identity, sharpness.

Every plot has one width and frame axis, so they line up on the page :mod:`pcavs.eval.report` writes;
the stretches shaded are the ones :func:`pcavs.eval.quality.quality_flags` reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pcavs.eval.quality import ReportOptions, VideoAnalysis, bridge_runs, frame_runs

__all__ = ["plot_faces", "plot_identity", "plot_sharpness", "plot_shifts", "plot_sync"]


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


def plot_faces(a: VideoAnalysis, path: Path) -> None:
    """A strip with one bar per frame: green where a face was found, red where not."""
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


def plot_sync(a: VideoAnalysis, opts: ReportOptions, path: Path) -> None:
    """Sliding-window sync confidence (top) and best offset (bottom) over the video."""
    assert a.sync is not None and a.sliding is not None
    fig, axes = _figure(2, 4.8, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    s, t = a.sliding, a.num_frames
    no_face = frame_runs(~a.face_found)
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


def plot_shifts(a: VideoAnalysis, path: Path) -> None:
    """The whole video's mean audio-visual similarity for every shift; its peak is the offset."""
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


def plot_identity(a: VideoAnalysis, opts: ReportOptions, path: Path) -> None:
    """Identity similarity per frame against the threshold."""
    fig, ax = _figure(1, 2.9)
    t, sim = a.num_frames, a.identity_similarity
    x = np.arange(t)
    ok = np.isfinite(sim)
    ax.plot(x[ok], sim[ok], ".-", color="#1f6fb2", lw=1.2, ms=3, label="identity similarity")
    ax.axhline(opts.identity_threshold, color="#d9534f", ls="--", lw=1, label=f"threshold {opts.identity_threshold:g}")
    _shade(ax, bridge_runs(frame_runs(ok & (sim < opts.identity_threshold)), ok), "#d9534f", "below threshold")
    _shade(ax, frame_runs(~a.face_found), "#888888", "no face")
    lo = min(opts.identity_threshold - 0.05, float(np.nanmin(sim)) - 0.02) if ok.any() else 0.0
    ax.set_ylim(max(lo, -1.0), 1.005)
    ax.set_ylabel("cosine similarity", fontsize=9)
    ax.set_xlabel("frame", fontsize=9)
    _style(ax, t)
    _seconds_axis(ax, a.fps)
    _save(fig, path)


def plot_sharpness(a: VideoAnalysis, opts: ReportOptions, path: Path) -> None:
    """Laplacian-variance sharpness (top) and CPBD (bottom) per frame."""
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
        _shade(ax, frame_runs(ok & (a.sharpness < opts.blur_ratio * med)), "#d9534f", "much blurrier")
    _shade(ax, frame_runs(~a.face_found), "#888888", "no face")
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

