"""Training and calibration of the sync expert (``pcavs train-sync``): SynthTalk clips, jitter, InfoNCE.

The expert itself (network, files, inference) is :mod:`pcavs.eval.syncexpert`. Training clips are
rendered in memory from SynthTalk and cached as wide mouth crops + mel. On faces ``evaluate``'s
detector misses (then the frame or filled landmarks stand in) the mouth is at half size, off centre or
jumping between frames, so training sees the box zoomed, shifted, turned and wobbling per frame
(:class:`TrackerJitter`) around the landmark-aligned mouth.

Training (:func:`train_sync_expert`) is an InfoNCE over shifts: for each video window the right audio
must beat the audio 1..5 frames either way (hard negatives: what teaches an offset) and the audio of
the other clips in the batch (random negatives). The threshold below which an offset is "unreliable"
is calibrated on held-out clips (:func:`calibrate`) and stored in the expert's ``config.json``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from pcavs.audio import mel_windows, melspectrogram
from pcavs.eval.sync import contrastive_sync
from pcavs.eval.syncexpert import (
    BUILTIN_SYNC_EXPERT,
    MOUTH_BOX,
    MOUTH_H,
    MOUTH_W,
    STACK,
    SyncExpert,
    SyncExpertNet,
    central,
    mouth_crops,
    mouth_stacks,
    save_sync_expert,
)
from pcavs.fileio import atomic_path

__all__ = [
    "TrackerJitter",
    "add_arguments",
    "calibrate",
    "delay_audio",
    "render_training_clip",
    "run",
    "train_sync_expert",
    "warp_stacks",
]


# ------------------------------------------------------------------------------------------ data
def render_training_clip(seed: int, index: int, seconds: float = 4.0, jitter: bool = True, wide: bool = False
                         ) -> tuple[np.ndarray, np.ndarray]:
    """One SynthTalk clip as ``(mouths (T, 32, 48) uint8, audio (samples,) float32 at 16 kHz)``
    (``wide``: mouths ``(T, 64, 96)`` of :data:`WIDE_BOX`).

    Rendered in memory (no video encoding) with the dataset's own per-clip seeds
    (:func:`pcavs.synth.dataset.plan_clips` with 2 clips per identity), aligned with the official
    alignment of the ground-truth landmarks. ``jitter`` moves the alignment per clip (+-4 px, +-6 %
    scale, +-3 deg) and per frame (0.7 px), as a landmark tracker on a real video would.
    """
    from pcavs.face.align import align_face
    from pcavs.synth import render_iter, sample_background, sample_identity, sample_pose, speech_clip
    from pcavs.synth.dataset import FPS, plan_clips
    from pcavs.synth.speech import random_voice

    spec = plan_clips(index // 2 + 1, 2, seconds, 224, seed)[index]
    ident = dataclasses.replace(sample_identity(spec.identity_seed), **sample_background(spec.background_seed))
    audio, _ = speech_clip(spec.speech_seed, spec.seconds, voice=random_voice(np.random.default_rng(spec.voice_seed)))
    n = int(round(spec.seconds * FPS))
    rng = np.random.default_rng([seed, index, 99])
    scale, ang = rng.uniform(0.94, 1.06), math.radians(rng.uniform(-3, 3))
    shift = rng.uniform(-4, 4, 2)
    rot = scale * np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    crops = []
    for frame, gt in render_iter(ident, sample_pose(spec.pose_seed, n, fps=FPS), audio, spec.size,
                                 blink_seed=spec.blink_seed):
        lm = np.asarray(gt["landmarks"], dtype=np.float64)
        if jitter:
            c = lm.mean(axis=0)
            lm = (lm - c) @ rot.T + c + shift + rng.normal(0, 0.7, 2)
        crops.append(align_face(frame, lm, 224)[0])
    return mouth_crops(np.stack(crops), wide), np.asarray(audio, np.float32)


def _cache_clips(cache: Path, seed: int, count: int, seconds: float, log: Any, wide: bool = False) -> list[Path]:
    cache.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        p = cache / f"{'wide_' if wide else ''}seed{seed}_{i:04d}.npz"
        if not p.exists():
            mouths, audio = render_training_clip(seed, i, seconds, wide=wide)
            mel = melspectrogram(audio).numpy().astype(np.float32)
            with atomic_path(p, suffix=".npz") as tmp:  # the suffix: np.savez appends .npz to other names
                np.savez(tmp, mouths=mouths, mel=mel)
            log(f"cached {p.name} ({i + 1}/{count})")
        paths.append(p)
    return paths


def _augment(x: Tensor, gen: torch.Generator) -> Tensor:
    """Per-stack contrast/brightness, blur-like noise: the H.264 encode and other renderers."""
    b = x.shape[0]
    gain = torch.empty(b, 1, 1, 1).uniform_(0.7, 1.3, generator=gen)
    bias = torch.empty(b, 1, 1, 1).uniform_(-30, 30, generator=gen)
    noise = torch.randn(x.shape, generator=gen) * torch.empty(b, 1, 1, 1).uniform_(0, 6, generator=gen)
    return (x * gain + bias + noise).clamp(0, 255)


@dataclass
class TrackerJitter:
    """How far the training crops move from the landmark-aligned mouth box (fractions of the box).

    Seen on SynthTalk clips of seed 9300 through ``evaluate``: its HOG detector finds some cartoon faces
    in few frames or none (5 of 40 clips: none, so the square frame is taken as the aligned crop; 8 more:
    under 60 % of frames, the rest filled), and the crop then shows the mouth at about half size, up to
    0.4 box heights off centre (half cut off at the box's edge) or jumping from frame to frame; the
    expert trained only on pinned mouths read those clips with a flat offset curve."""

    zoom: tuple[float, float] = (0.5, 1.15)  # mouth size relative to the pinned crop, per window (log-uniform)
    shift: float = 0.4  # per-window centre shift, uniform +-, in box widths/heights
    angle: float = 10.0  # per-window rotation, degrees +-
    frame_shift: float = 0.06  # per-frame extra shift (normal sd), box units: tracker wobble
    frame_zoom: float = 0.06  # per-frame extra log-zoom (normal sd)


_DEFAULT_JITTER = TrackerJitter()


def warp_stacks(wide: Tensor, gen: torch.Generator, jit: TrackerJitter | None) -> Tensor:
    """``(N, 5, 64, 96)`` wide stacks -> ``(N, 5, 32, 48)`` mouth stacks seen through a jittered box
    (``jit`` None: the plain mouth box, the central half)."""
    n, f = wide.shape[:2]
    theta = torch.zeros(n, f, 2, 3)
    if jit is None:
        theta[..., 0, 0] = theta[..., 1, 1] = 0.5
    else:
        lo, hi = math.log(jit.zoom[0]), math.log(jit.zoom[1])
        logz = torch.empty(n, 1).uniform_(lo, hi, generator=gen) + torch.randn(n, f, generator=gen) * jit.frame_zoom
        ang = torch.empty(n, 1).uniform_(-jit.angle, jit.angle, generator=gen).expand(n, f) * math.pi / 180
        shift = torch.empty(n, 1, 2).uniform_(-jit.shift, jit.shift, generator=gen) \
            + torch.randn(n, f, 2, generator=gen) * jit.frame_shift
        sc = 0.5 / logz.exp()  # the box in the wide image's [-1, 1] units: 0.5 = the mouth box itself
        # the wide box is 2:3 like the output, so a rotation needs the aspect in its off-diagonal terms
        asp = MOUTH_W / MOUTH_H
        theta[..., 0, 0] = sc * torch.cos(ang)
        theta[..., 0, 1] = -sc * torch.sin(ang) / asp
        theta[..., 1, 0] = sc * torch.sin(ang) * asp
        theta[..., 1, 1] = sc * torch.cos(ang)
        theta[..., :, 2] = shift  # box units: a shift of 1 box = 1.0 in the wide image's normalised units
    grid = F.affine_grid(theta.view(n * f, 2, 3), [n * f, 1, MOUTH_H, MOUTH_W], align_corners=False)
    out = F.grid_sample(wide.reshape(n * f, 1, *wide.shape[2:]).float(), grid, mode="bilinear",
                        padding_mode="border", align_corners=False)
    return out.view(n, f, MOUTH_H, MOUTH_W)


def train_sync_expert(out: str | Path, cache: str | Path = "data/sync_expert", seed: int = 7100,
                      clips: int = 40, val_clips: int = 10, seconds: float = 4.0, steps: int = 1000,
                      batch: int = 96, max_shift: int = 5, lr: float = 2e-3, temperature: float = 0.07,
                      jitter: TrackerJitter | None = _DEFAULT_JITTER, log: Any = print) -> dict[str, Any]:
    """Render/cache SynthTalk clips, train the expert, calibrate its threshold, save it to ``out``.

    Training clips come from ``seed``, calibration clips from ``seed + 1`` (held out). Each training
    window is seen through a jittered mouth box (``jitter``, None: the plain box). The threshold is
    calibrated on the held-out clips (:func:`calibrate`). Resumable: the state is saved to
    ``out/train_state.pt`` every 100 steps and picked up by the next run with the same options.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.time()
    train = [np.load(p) for p in _cache_clips(Path(cache), seed, clips, seconds, log, wide=True)]
    val = [np.load(p) for p in _cache_clips(Path(cache), seed + 1, val_clips, seconds, log, wide=True)]
    val = [{"mouths": central(d["mouths"]), "mel": d["mel"]} for d in val]
    log(f"data ready in {time.time() - t0:.0f} s")
    mouths = [torch.from_numpy(d["mouths"]) for d in train]
    windows = [mel_windows(torch.from_numpy(d["mel"]), 0, d["mouths"].shape[0]) for d in train]
    net = SyncExpertNet()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    history: list[dict[str, Any]] = []
    state_path = Path(out) / "train_state.pt"
    options = {"seed": seed, "clips": clips, "steps": steps, "batch": batch, "lr": lr, "jitter": str(jitter)}
    start = 0
    if state_path.exists():
        st = torch.load(state_path, weights_only=False)
        if st["options"] == options:
            net.load_state_dict(st["net"])
            opt.load_state_dict(st["opt"])
            sched.load_state_dict(st["sched"])
            gen.set_state(st["gen"])
            start, history = st["step"], st["history"]
            log(f"resumed at step {start} from {state_path}")
    net.train()
    length = 12  # consecutive anchor frames per clip: their shifted audio windows overlap, so are shared
    per = max(2, batch // length)
    for step in range(start, steps):
        ci = torch.randint(len(train), (per,), generator=gen)
        vids, auds = [], []
        for c in ci.tolist():
            t = mouths[c].shape[0]
            f0 = int(torch.randint(max_shift, t - length - max_shift + 1, (1,), generator=gen))
            vids.append(warp_stacks(mouth_stacks(mouths[c], torch.arange(f0, f0 + length)), gen, jitter))
            auds.append(windows[c][f0 - max_shift : f0 + length + max_shift])
        v = net.embed_video(_augment(torch.cat(vids), gen)).view(per, length, -1)
        a = net.embed_audio(torch.cat(auds)).view(per, length + 2 * max_shift, -1)
        # own[c, l, j]: video frame f0+l against audio frame f0+l+j-K (hard negatives at j != K)
        band = torch.stack([a[:, j : j + length] for j in range(2 * max_shift + 1)], dim=2)
        own = torch.einsum("cld,cljd->clj", v, band).reshape(per * length, -1)
        vf, af = v.reshape(per * length, -1), a[:, max_shift : max_shift + length].reshape(per * length, -1)
        cross = vf @ af.T  # the other clips' in-sync audio: random negatives
        clip_of = torch.arange(per).repeat_interleave(length)
        cross = cross.masked_fill(clip_of[:, None] == clip_of[None], float("-inf"))
        logits = torch.cat([own, cross], dim=1) / temperature
        loss = F.cross_entropy(logits, torch.full((per * length,), max_shift))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps - 1:
            acc = float((own.argmax(1) == max_shift).float().mean())
            history.append({"step": step, "loss": round(float(loss.detach()), 4), "frame_acc": round(acc, 3)})
            log(f"step {step} loss {float(loss.detach()):.3f} frame acc {acc:.2f} ({time.time() - t0:.0f} s)")
        if (step + 1) % 100 == 0 and step + 1 < steps:
            state_path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(state_path) as tmp:
                torch.save({"options": options, "net": net.state_dict(), "opt": opt.state_dict(),
                            "sched": sched.state_dict(), "gen": gen.get_state(), "step": step + 1,
                            "history": history}, tmp)
    net.eval()
    expert = SyncExpert(net, threshold=0.0)
    threshold, rows = calibrate(expert, val)
    log(f"threshold {threshold:.4f}")
    meta = {"name": Path(out).name, "width": 16, "dim": 64, "threshold": threshold,
            "mouth_box": list(MOUTH_BOX), "stack": STACK, "train": {
                "seed": seed, "clips": clips, "seconds": seconds, "steps": steps, "batch": batch,
                "max_shift": max_shift, "lr": lr, "temperature": temperature,
                "jitter": None if jitter is None else dataclasses.asdict(jitter),
                "minutes": round((time.time() - t0) / 60, 1)},
            "calibration": {"seed": seed + 1, "clips": val_clips, "shifts": list(range(-5, 6)), "rows": rows},
            "history": history}
    save_sync_expert(net, out, meta)
    state_path.unlink(missing_ok=True)
    return meta


def delay_audio(wave: np.ndarray, frames: int, sample_rate: int = 16000, fps: int = 25) -> np.ndarray:
    """The audio delayed by ``frames`` (negative: advanced), same length: the sound comes late for > 0."""
    n = frames * sample_rate // fps
    if n >= 0:
        return np.concatenate([np.zeros(n, wave.dtype), wave[: len(wave) - n]])
    return np.concatenate([wave[-n:], np.zeros(-n, wave.dtype)])


def calibrate(expert: SyncExpert, clips: list[Any], target: float = 0.97, null_quantile: float = 0.95,
              max_shift: int = 15) -> tuple[float, list[list[Any]]]:
    """Threshold from held-out ``{"mouths", "mel"}`` clips (mouth crops as evaluation makes them).

    Two requirements, the threshold is the stricter:

    * **right answers kept right**: with each clip's audio delayed by -5..+5 frames, the lowest
      confidence above which at least ``target`` of the offsets are within 1 frame;
    * **no answer where there is none**: each clip's mouths against every other clip's speech (no right
      offset exists) may get an offset at most ``1 - null_quantile`` of the time: the ``null_quantile``
      quantile of those curves' confidences.

    Returns the threshold and the rows ``[true shift, found, confidence]`` (then ``["other speech", "-",
    quantile, count]``) stored in the expert's config.
    """
    rows = []
    vis, aud = [], []
    for d in clips:
        t = d["mouths"].shape[0]
        v = expert.embed(d["mouths"].reshape(t, -1))
        mel = torch.from_numpy(d["mel"])
        vis.append(v)
        for k in range(-5, 6):
            # delaying the sound by k frames = shifting the mel rows by 4k (0 = silence, as padded)
            sm = torch.zeros_like(mel)
            r = 4 * k
            if r >= 0:
                sm[r:] = mel[: mel.shape[0] - r]
            else:
                sm[:r] = mel[-r:]
            with torch.inference_mode():
                a = expert.net.embed_audio(mel_windows(sm, 0, t)).numpy()
            if k == 0:
                aud.append(a)
            res = contrastive_sync(a, v, max_shift)
            rows.append([k, res.offset, round(float(res.confidence), 4)])
    arr = np.array(rows, dtype=np.float64)
    ok = np.abs(arr[:, 1] - arr[:, 0]) <= 1
    order = np.argsort(-arr[:, 2])
    right = float(arr[order[-1], 2]) if len(order) else 0.0
    # the lowest threshold whose kept set is >= target right
    for j in range(1, len(order) + 1):
        if ok[order[:j]].mean() >= target:
            right = float(arr[order[j - 1], 2])
    # curves with no right answer: each clip's mouths against every other clip's speech
    null = []
    for i, v in enumerate(vis):
        for j, a in enumerate(aud):
            n = min(len(v), len(a))
            if i != j and n >= STACK:
                null.append(contrastive_sync(a[:n], v[:n], max_shift).confidence)
    floor = float(np.quantile(null, null_quantile)) if null else -np.inf
    threshold = max(right, floor)
    rows.append(["other speech", "-", round(floor, 4), len(null)])
    return float(threshold), rows


# ------------------------------------------------------------------------------------------ CLI
def add_arguments(p: Any) -> None:
    """``pcavs train-sync``: options of :func:`train_sync_expert`."""
    p.add_argument("-o", "--output", default=str(BUILTIN_SYNC_EXPERT), metavar="DIR",
                   help="weights folder to write (default: the built-in pcavs/assets/weights/synthtalk-sync)")
    p.add_argument("--cache", default="data/sync_expert", metavar="DIR",
                   help="where rendered mouth crops + mel are cached (default: data/sync_expert)")
    p.add_argument("--seed", type=int, default=7100,
                   help="SynthTalk seed of the training clips; seed+1 gives the calibration clips (default: 7100)")
    p.add_argument("--clips", type=int, default=40, help="training clips, 4 s each (default: 40)")
    p.add_argument("--val-clips", type=int, default=10, help="held-out calibration clips (default: 10)")
    p.add_argument("--steps", type=int, default=1000,
                   help="optimiser steps (default: 1000; resumes from OUTPUT/train_state.pt after an interruption)")


def run(args: Any) -> int:
    if args.clips < 2 or args.val_clips < 1 or args.steps < 1:
        import sys

        print("pcavs train-sync: --clips must be >= 2, --val-clips and --steps >= 1", file=sys.stderr)
        return 2
    meta = train_sync_expert(args.output, cache=args.cache, seed=args.seed, clips=args.clips,
                             val_clips=args.val_clips, steps=args.steps)
    print(f"wrote {args.output} (threshold {meta['threshold']:.4f}, {meta['train']['minutes']} min)")
    return 0
