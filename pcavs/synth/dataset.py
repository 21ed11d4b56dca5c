"""Write a SynthTalk dataset in the VoxCeleb2 layout.

``out_dir/id{XXXXX}/{video_id}/{clip:05d}.mp4`` (H.264 yuv420p 25 fps + AAC
16 kHz mono) with ``{clip:05d}.json`` ground truth beside each mp4. Every
clip's content is a pure function of (seed, identity index, clip index), so
output is identical for any worker count and a rerun skips finished clips.
Each identity keeps one look and one voice; each of its videos has its own
background, like one person filmed in different rooms.

Pose twins (``twins=True``, ``pcavs synth --pose-twins``): the same plan with every clip's look and
background replaced by a new person's (seeded per clip), keeping its head motion, blinks, voice and words,
so frame ``t`` of a twin shows another face at exactly the pose and mouth of frame ``t`` of the clip with
the same path. Training reads them through ``data.pose_twins``: the non-identity encoder then sees one
person while the generator must draw another at that pose, as in cross-identity reenactment.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..fileio import atomic_write_text
from ..media import VideoWriter
from .face_model import sample_background, sample_identity
from .motion import sample_pose
from .render import render_iter
from .speech import SAMPLE_RATE, Voice, have_espeak, random_voice, speech_clip

FPS = 25
CLIPS_PER_VIDEO = 3
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _sub_seed(*keys: int) -> int:
    """Independent 31-bit seed for a tuple of integer keys."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0] & 0x7FFFFFFF)


@dataclass(frozen=True)
class ClipSpec:
    """Everything needed to produce one clip, independent of any other clip."""

    identity_index: int
    identity_seed: int
    video_id: str
    video_index: int
    clip: int  # 1-based within its video, as in VoxCeleb2
    pose_seed: int
    speech_seed: int
    blink_seed: int
    background_seed: int
    voice_seed: int
    seconds: float
    size: int
    twin: bool = False  # the look and background are a pose twin's (see the module docstring)

    @property
    def relpath(self) -> Path:
        return Path(f"id{self.identity_index:05d}") / self.video_id / f"{self.clip:05d}"


def plan_clips(num_identities: int, clips_per_identity: int, seconds: float, size: int, seed: int) -> list[ClipSpec]:
    """The deterministic list of clips :func:`write_dataset` produces."""
    specs = []
    for i in range(num_identities):
        ident_seed = _sub_seed(seed, 1, i)
        for k in range(clips_per_identity):
            v = k // CLIPS_PER_VIDEO
            vrng = np.random.default_rng(_sub_seed(seed, 2, i, v))
            video_id = "".join(_ID_CHARS[j] for j in vrng.integers(0, len(_ID_CHARS), 11))
            specs.append(ClipSpec(
                identity_index=i, identity_seed=ident_seed, video_id=video_id, video_index=v,
                clip=k % CLIPS_PER_VIDEO + 1, pose_seed=_sub_seed(seed, 3, i, k),
                speech_seed=_sub_seed(seed, 4, i, k), blink_seed=_sub_seed(seed, 5, i, k),
                background_seed=_sub_seed(seed, 6, i, v), voice_seed=_sub_seed(seed, 7, i),
                seconds=float(seconds), size=int(size)))
    return specs


def twin_spec(spec: ClipSpec, seed: int) -> ClipSpec:
    """``spec`` with a new person's look and background: same motion, blinks, voice and words."""
    key = (spec.identity_index, spec.video_index, spec.clip)
    return dataclasses.replace(spec, identity_seed=_sub_seed(seed, 8, *key), background_seed=_sub_seed(seed, 9, *key),
                               twin=True)


def clip_done(out_dir: Path, spec: ClipSpec) -> bool:
    """A clip is complete when both its mp4 and its JSON (written last) exist."""
    stem = Path(out_dir) / spec.relpath
    return stem.with_suffix(".mp4").is_file() and stem.with_suffix(".json").is_file()


def write_clip(out_dir: str | Path, spec: ClipSpec) -> Path:
    """Render, encode and write one clip + ground truth atomically; returns the mp4 path."""
    stem = Path(out_dir) / spec.relpath
    stem.parent.mkdir(parents=True, exist_ok=True)
    ident = dataclasses.replace(sample_identity(spec.identity_seed), **sample_background(spec.background_seed))
    voice: Voice = random_voice(np.random.default_rng(spec.voice_seed))
    audio, script = speech_clip(spec.speech_seed, spec.seconds, voice=voice)
    n = int(round(spec.seconds * FPS))
    pose = sample_pose(spec.pose_seed, n, fps=FPS)
    gts: list[dict[str, Any]] = []

    def frames() -> Iterable[np.ndarray]:
        for frame, gt in render_iter(ident, pose, audio, spec.size, blink_seed=spec.blink_seed):
            gts.append(gt)
            yield frame

    mp4 = stem.with_suffix(".mp4")
    # one encoder thread per clip: parallelism comes from the dataset workers
    with VideoWriter(mp4, fps=FPS, audio=audio, sample_rate=SAMPLE_RATE, preset="fast", threads=1) as writer:
        for frame in frames():
            writer.write(frame[None])
    meta = {
        "format": "synthtalk-v1", "fps": FPS, "sample_rate": SAMPLE_RATE, "size": spec.size,
        "num_frames": n, "seconds": spec.seconds, "spec": dataclasses.asdict(spec),
        "identity": ident.to_dict(), "speech": script, "frames": gts,
    }
    atomic_write_text(stem.with_suffix(".json"), json.dumps(meta, separators=(",", ":")))
    return mp4


def write_dataset(out_dir: str | Path, num_identities: int, clips_per_identity: int, seconds: float = 4.0,
                  size: int = 224, seed: int = 0, workers: int = 1, progress: bool = True,
                  twins: bool = False) -> dict[str, int]:
    """Write (or finish) a dataset, or its pose twins (``twins``); returns counts of clips written and skipped."""
    if size % 2:
        raise ValueError(f"size must be even for yuv420p video, got {size}")
    if not have_espeak():
        raise RuntimeError("espeak-ng is required for SynthTalk speech; install it: apt-get install espeak-ng")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    specs = plan_clips(num_identities, clips_per_identity, seconds, size, seed)
    if twins:
        specs = [twin_spec(s, seed) for s in specs]
    done = [s for s in specs if clip_done(out, s)]
    if done:  # a rerun skips finished clips: they must be of the kind asked for, not the data's or the twins'
        made = json.loads((out / done[0].relpath).with_suffix(".json").read_text())["spec"].get("twin", False)
        if made != twins:
            kind = "pose twins" if made else "data clips (not twins)"
            raise ValueError(f"{out} already holds {kind}; write {'--pose-twins ' if twins else ''}output to "
                             "another folder")
    todo = [s for s in specs if not clip_done(out, s)]
    bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc="synth clips", unit="clip",
               disable=not progress)
    try:
        if workers <= 1:
            for s in todo:
                write_clip(out, s)
                bar.update(1)
        else:
            # spawn, not fork: callers may hold torch / OpenMP thread pools that fork would break
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                futures = [pool.submit(write_clip, out, s) for s in todo]
                for f in as_completed(futures):
                    f.result()
                    bar.update(1)
    finally:
        bar.close()
    (out / "synthtalk.json").write_text(json.dumps({
        "format": "synthtalk-v1", "seed": seed, "identities": num_identities, "clips_per_identity":
        clips_per_identity, "seconds": seconds, "size": size, "fps": FPS, "sample_rate": SAMPLE_RATE,
        "videos_per_identity": math.ceil(clips_per_identity / CLIPS_PER_VIDEO), "pose_twins": twins}, indent=1))
    return {"written": len(todo), "skipped": len(specs) - len(todo)}
