"""Live speed: sustained frame rate, end-to-end latency and A/V sync of ``pcavs live``'s engine.

    python benchmarks/live.py [--preset builtin|official] [--seconds 10] [--threads 1] [--json out.json]

The demo speech, looped to ``--seconds``, is played into a :class:`TalkingFaceStream` in real time
(20 ms chunks, as a microphone delivers them) with pacing on; every frame pulled is written to a
fragmented mp4, as ``pcavs live`` does. Reported:

- ``capacity``: frames/s the model sustains through the stream with no clock (audio pushed at once);
- ``made fps``: frames generated per wall second in real time (25 = every frame), and the share held;
- latency: from the audio sample at a frame's time being pushed to the frame being pulled (median,
  p95, max), and the algorithmic part (the mel window's 120 ms lookahead);
- drift: median latency of the last quarter minus the first (0 = no drift);
- sync: every slot present at ``index / fps``, every generated picture made for its own slot
  (``source_index == index``), the file's frame count and sound length equal to the audio's.

``builtin`` is the shipped small model (64 px); ``official`` the official architecture (224 px) with
seeded random weights (speed does not depend on the values), the photo's own pose.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from pcavs.audio import num_video_frames
from pcavs.config import preset
from pcavs.device import set_cpu_threads
from pcavs.infer.demo import DEMO_INPUTS, DEMO_WEIGHTS
from pcavs.infer.live import drive, paced_chunks
from pcavs.infer.live_output import LiveWriter
from pcavs.infer.pipeline import GenerationOptions, TalkingFacePipeline
from pcavs.infer.stream import TalkingFaceStream
from pcavs.infer.stream_pacing import Pacing
from pcavs.media import read_audio
from pcavs.model import PCAVS

SR = 16000


def load_pipe(name: str, device: str) -> TalkingFacePipeline:
    if name == "builtin":
        return TalkingFacePipeline.from_pretrained(DEMO_WEIGHTS, device=device)
    torch.manual_seed(0)
    return TalkingFacePipeline(PCAVS(preset("official")).eval(), device)


def open_stream(pipe: TalkingFacePipeline, opts: GenerationOptions, **kwargs: object) -> TalkingFaceStream:
    landmarks = np.asarray(json.loads((DEMO_INPUTS / "landmarks.json").read_text())["identity"])
    return TalkingFaceStream.open(pipe, DEMO_INPUTS / "identity.png", identity_landmarks=landmarks, options=opts,
                                  **kwargs)


def capacity(pipe: TalkingFacePipeline, opts: GenerationOptions, wave: np.ndarray, frames: int) -> float:
    """Frames/s through the stream with all audio at once (no pacing, no clock)."""
    stream = open_stream(pipe, opts)
    stream.push_audio(wave[: (frames + 4) * SR // 25])
    stream.pull()  # warm-up and the first batch
    stream.push_audio(wave[(frames + 4) * SR // 25 : (2 * frames + 4) * SR // 25])
    t0 = time.perf_counter()
    n = len(stream.pull())
    return n / (time.perf_counter() - t0)


def decoded(path: Path) -> tuple[int, float]:
    """(video frames, seconds of sound) a decoder gets from ``path``."""
    frames = samples = 0
    with av.open(str(path)) as c:
        for packet in c.demux():
            for f in packet.decode():
                if isinstance(f, av.VideoFrame):
                    frames += 1
                else:
                    samples += f.samples
    return frames, samples / SR


def run(args: argparse.Namespace) -> dict:
    set_cpu_threads(args.threads)
    pipe = load_pipe(args.preset, args.device)
    speech = read_audio(DEMO_INPUTS / "speech.wav")
    wave = np.tile(speech, int(np.ceil(args.seconds * SR / speech.size)))[: int(args.seconds * SR)]
    opts = GenerationOptions(precision=args.precision, batch_size=args.batch_size)
    cap = capacity(pipe, opts, np.tile(wave, 2), 10 if args.preset == "official" else 50)
    stream = open_stream(pipe, opts, pacing=Pacing(args.max_delay))
    frames: list = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "live.mp4"
        size = (pipe.image_size, pipe.image_size)
        t0 = time.perf_counter()
        with LiveWriter(out, size, sample_rate=SR) as writer:
            drive(stream, paced_chunks(wave, SR, args.chunk_ms), writer, SR, on_frame=frames.append)
        wall = time.perf_counter() - t0
        file_frames, file_audio = decoded(out)
    expected = num_video_frames(wave.size)
    made = [f for f in frames if not f.held]
    lat = np.array([f.latency for f in made]) * 1000
    q = max(len(lat) // 4, 1)
    sync = {
        "slots_complete": [f.index for f in frames] == list(range(expected)),
        "pts_on_grid": all(f.pts == f.index / 25 for f in frames),
        "made_for_own_slot": all(f.source_index == f.index for f in made),
        "file_frames": file_frames,
        "expected_frames": expected,
        "file_audio_s": file_audio,
        "audio_s": wave.size / SR,
    }
    return {
        "preset": args.preset,
        "image_size": pipe.image_size,
        "threads": args.threads,
        "precision": args.precision,
        "seconds": args.seconds,
        "wall_s": wall,
        "capacity_fps": cap,
        "made_fps": len(made) / (stream.stats.last_pull - stream.stats.first_push),
        "held_share": 1 - len(made) / len(frames),
        "latency_ms": {"median": float(np.median(lat)), "p95": float(np.percentile(lat, 95)),
                       "max": float(lat.max())},
        "algorithmic_ms": stream.latency * 1000,
        "made": len(made),
        # too few made frames (a model far slower than real time) give no trend
        "drift_ms": float(np.median(lat[-q:]) - np.median(lat[:q])) if len(made) >= 8 else None,
        "sync": sync,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", choices=("builtin", "official"), default="builtin")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--chunk-ms", type=float, default=20.0)
    p.add_argument("--max-delay", type=float, default=0.08)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    r = run(args)
    s = r["sync"]
    ok = s["slots_complete"] and s["pts_on_grid"] and s["made_for_own_slot"] and s["file_frames"] == s[
        "expected_frames"]
    lat = r["latency_ms"]
    drift = "n/a" if r["drift_ms"] is None else f"{r['drift_ms']:+.0f} ms"
    print(f"| {r['preset']} {r['image_size']}px {r['precision']} {r['threads']} thr "
          f"| capacity {r['capacity_fps']:.1f} fps "
          f"| made {r['made_fps']:.1f} fps, {100 * r['held_share']:.0f} % held "
          f"| latency median {lat['median']:.0f} / p95 {lat['p95']:.0f} / max {lat['max']:.0f} ms "
          f"(algorithmic {r['algorithmic_ms']:.0f}) | drift {drift} ({r['made']} made) "
          f"| sync {'holds' if ok else 'BROKEN'}: {s['file_frames']}/{s['expected_frames']} frames, "
          f"sound {s['file_audio_s']:.2f}/{s['audio_s']:.2f} s |")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
