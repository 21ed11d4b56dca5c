"""``pcavs pose show``: a track as a picture: yaw, pitch and roll over time with gaps and cuts marked, and a
contact sheet of the crops the pose encoder sees (read from the source video when it is at hand)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..fileio import atomic_path
from .check import LOW_SCORE, runs
from .file import PoseTrack, TrackFileError

__all__ = ["contact_sheet", "render_track"]


def contact_sheet(track: PoseTrack, count: int = 8, size: int = 112) -> np.ndarray | None:
    """``count`` crops evenly spread over the track, side by side (None if the source video is missing)."""
    from pcavs.media import MediaError

    from .codes import _crops

    if len(track) == 0:
        return None
    picks = np.linspace(0, len(track) - 1, min(count, len(track))).round().astype(int)
    sub = track.select(np.unique(picks))
    try:
        tiles = dict(_crops(sub, size))
    except (MediaError, TrackFileError):
        return None  # the source video is gone: the plot alone
    return np.concatenate([tiles[i] for i in range(len(sub))], 1)


def render_track(track: PoseTrack, output: str | os.PathLike[str], *, crops: bool = True) -> Path:
    """Write the plot (PNG) of ``track``; returns the path (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(output)
    sheet = contact_sheet(track) if crops else None
    rows = 2 if sheet is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(11, 3.6 + 1.8 * (rows - 1)), dpi=100, squeeze=False,
                             gridspec_kw={"height_ratios": [2, 1][:rows]})
    ax = axes[0, 0]
    t = track.time
    for k, (name, colour) in enumerate(zip(("yaw", "pitch", "roll"), ("tab:blue", "tab:orange", "tab:green"),
                                           strict=True)):
        ax.plot(t, track.angles[:, k], color=colour, label=name, lw=1.4)
    dt = 1.0 / track.fps
    for j, (a, b) in enumerate(runs(track.filled)):
        ax.axvspan(t[a] - dt / 2, t[b - 1] + dt / 2, color="red", alpha=0.18, lw=0,
                   label="no face (filled)" if j == 0 else None)
    for j, (a, b) in enumerate(runs(np.nan_to_num(track.score, nan=np.inf) < LOW_SCORE)):
        ax.axvspan(t[a] - dt / 2, t[b - 1] + dt / 2, color="gold", alpha=0.25, lw=0,
                   label="weak detection" if j == 0 else None)
    for j, c in enumerate(np.flatnonzero(np.diff(track.shot)) + 1):
        ax.axvline(t[c] - dt / 2, color="black", ls="--", lw=1, label="shot cut" if j == 0 else None)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("degrees")
    ax.set_title(f"{track.name}: yaw > 0 turns to image left, pitch > 0 nods down, "
                 "roll > 0 is clockwise", fontsize=9)
    ax.legend(loc="upper right", fontsize=8, ncols=6)
    ax.set_xlim(t[0] - dt, t[-1] + dt) if len(t) else None
    if sheet is not None:
        ax2 = axes[1, 0]
        ax2.imshow(sheet)
        ax2.set_axis_off()
        ax2.set_title("crops the pose encoder sees (evenly spaced frames)", fontsize=9)
    fig.tight_layout()
    try:
        with atomic_path(out, suffix=".png") as tmp:
            fig.savefig(tmp)
    finally:
        plt.close(fig)
    return out
