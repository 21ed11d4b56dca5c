"""The preflight of a pose source: what in a track will make a poor or wrong head motion, found before a
long job. ``pcavs pose check`` prints it; ``generate`` prints its warnings for the pose video it uses."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .file import PoseTrack

__all__ = ["ANGLE_RANGES", "LOW_SCORE", "TrackCheck", "check_track", "runs"]

#: Head angles (degrees, |value|) inside which each model family saw its training faces. The built-in
#: model saw SynthTalk's bounds (``pcavs.synth.motion.LIMITS``); the official model, VoxCeleb2 talking
#: heads, where the 68-point landmarks the crop relies on stay usable up to about a three-quarter view.
ANGLE_RANGES: dict[str, tuple[float, float, float]] = {
    "small": (30.0, 30.0, 15.0),
    "official": (45.0, 30.0, 30.0),
}
#: Detector scores below this are weak (dlib HOG: real frontal faces score about 0.5-2.5).
LOW_SCORE = 0.3
#: A run of filled (face-less) frames longer than this is a problem, not a warning (generate's --max-gap).
LONG_GAP = 12


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of every run of True in a 1-D boolean array."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(m[1:] != m[:-1])
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _spans(spans: list[tuple[int, int]], fps: float, limit: int = 4) -> str:
    text = ", ".join(f"{a / fps:.2f}-{b / fps:.2f} s (frames {a}-{b - 1})" for a, b in spans[:limit])
    return text + (f" and {len(spans) - limit} more" if len(spans) > limit else "")


@dataclass
class TrackCheck:
    """Findings of :func:`check_track`: ``problems`` make ``pcavs pose check`` exit 2."""

    summary: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        lines = list(self.summary)
        lines += [f"problem: {p}" for p in self.problems] + [f"warning: {w}" for w in self.warnings]
        lines.append("verdict: " + ("usable" if self.ok and not self.warnings else
                                    "usable, see the warnings" if self.ok else "not usable as it is"))
        return "\n".join(lines)


def check_track(track: PoseTrack, *, model_family: str = "small", source_fps: float | None = None,
                source_frames: int | None = None, duration: float | None = None,
                max_gap: int = LONG_GAP) -> TrackCheck:
    """Check ``track`` against what a ``model_family`` model can follow (see :data:`ANGLE_RANGES`).

    ``source_fps`` / ``source_frames`` / ``duration`` (from the video's probe) reveal frame-rate changes.
    """
    fps, n = track.fps, len(track)
    out = TrackCheck()
    shots = int(track.shot.max()) + 1 if n else 0
    yaw, pitch, roll = (track.angles[:, k] for k in range(3))
    out.summary.append(f"{track.name}: {n} frames at {fps:g} fps ({n / fps:.2f} s), "
                       f"{shots} shot(s), {int(track.filled.sum())} filled frame(s)")
    out.summary.append(f"angles (deg): yaw {yaw.min():+.1f}..{yaw.max():+.1f}, pitch {pitch.min():+.1f}.."
                       f"{pitch.max():+.1f}, roll {roll.min():+.1f}..{roll.max():+.1f}")
    gaps = runs(track.filled)
    long_gaps = [g for g in gaps if g[1] - g[0] > max_gap]
    if long_gaps:
        out.problems.append(f"no face for more than {max_gap} frames at {_spans(long_gaps, fps)}: generate "
                            "stops there (--max-gap); cut those parts (pcavs pose edit --trim) or use another video")
    short = [g for g in gaps if g[1] - g[0] <= max_gap]
    if short:
        out.warnings.append(f"no face in {sum(b - a for a, b in short)} frame(s), filled by interpolation: "
                            f"{_spans(short, fps)}")
    weak = runs(np.nan_to_num(track.score, nan=np.inf) < LOW_SCORE)
    if weak:
        out.warnings.append(f"weak detections (score < {LOW_SCORE}) at {_spans(weak, fps)}: landmarks there "
                            "may be off; look at them with `pcavs pose show`")
    limits = ANGLE_RANGES.get(model_family, ANGLE_RANGES["official"])
    for name, values, limit in zip(("yaw", "pitch", "roll"), (yaw, pitch, roll), limits, strict=True):
        beyond = runs(np.abs(values) > limit)
        if beyond:
            frac = float(np.mean(np.abs(values) > limit))
            msg = (f"|{name}| beyond {limit:g} deg, the range the {model_family} model saw in training, in "
                   f"{100 * frac:.0f} % of the frames: {_spans(beyond, fps)}")
            (out.problems if name == "yaw" and frac > 0.5 else out.warnings).append(
                msg + ("; a profile view: the 68 landmarks and the crop are unreliable" if name == "yaw" else ""))
    if shots > 1:
        cuts = [int(i) for i in np.flatnonzero(np.diff(track.shot)) + 1]
        out.warnings.append(f"{shots - 1} shot cut(s) at " + ", ".join(f"{c / fps:.2f} s" for c in cuts[:6])
                            + ": the head jumps there (each shot is cropped on its own)")
    if source_fps and duration and source_frames:
        actual = source_frames / duration
        if abs(actual - source_fps) > 0.05 * source_fps:
            out.warnings.append(f"variable frame rate: {source_frames} frames in {duration:.2f} s ({actual:.1f} "
                                f"fps on average, the stream says {source_fps:g}); frames were read by their "
                                f"timestamps at {fps:g} fps")
        elif abs(source_fps - fps) > 0.01:
            out.summary.append(f"source at {source_fps:g} fps, read at {fps:g} fps by timestamps")
    return out
