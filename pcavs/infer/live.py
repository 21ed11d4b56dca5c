"""``pcavs live``: the live engine from the command line, paced in real time.

``pcavs live --audio speech.wav -o live.mp4`` plays the file into the stream as a microphone would (a
chunk every ``--chunk-ms``, at the pace of its own timeline) and writes a fragmented MP4 (or, with
``-o live.m3u8``, an HLS playlist) that a player can open while it grows. ``--audio -`` reads raw 16-bit
little-endian mono PCM at ``--rate`` Hz from stdin as it arrives (e.g. ``arecord -f S16_LE -r 16000 -c 1 |
pcavs live --audio - -o live.m3u8``). When the model is slower than real time, frames are held (see
:class:`pcavs.infer.stream_pacing.Pacing`) and sound and picture stay in sync. Exit status: 0 written, 2 a
problem the user can fix (one line), 130 after Ctrl-C (the file is valid up to its last fragment).
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["add_arguments", "run", "paced_chunks", "pcm_chunks", "drive"]


Chunks = Iterator[list[tuple[np.ndarray, float]]]


def paced_chunks(wave: np.ndarray, rate: int, chunk_ms: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, speed: float = 1.0) -> Chunks:
    """Lists of ``(chunk, arrival time)`` of ``wave`` as a microphone delivers it: chunk ``k`` arrives at
    ``t0 + (k + 1) * chunk_ms / speed``. Each list holds every chunk due by then: a consumer that was
    busy gets the ones it missed at once, each with its own arrival time (so latency figures stay true)."""
    size = max(1, round(rate * chunk_ms / 1000))
    period = size / rate / speed
    starts = list(range(0, wave.size, size))
    t0, k = clock(), 0
    while k < len(starts):
        wait = t0 + (k + 1) * period - clock()
        if wait > 0:
            sleep(wait)
        now, batch = clock(), []
        while k < len(starts) and t0 + (k + 1) * period <= now + 1e-9:
            batch.append((wave[starts[k] : starts[k] + size], t0 + (k + 1) * period))
            k += 1
        if batch:
            yield batch


def pcm_chunks(fd: int, clock: Callable[[], float] = time.monotonic, block: int = 1 << 16) -> Chunks:
    """Lists of ``(chunk, arrival time)`` of raw s16le mono PCM read from ``fd`` as it arrives, until EOF:
    each list is all that was waiting."""
    rest = b""
    while True:
        select.select([fd], [], [])
        data = os.read(fd, block)
        while data and select.select([fd], [], [], 0)[0]:  # drain what is already waiting
            more = os.read(fd, block)
            if not more:
                break
            data += more
        if not data:
            return
        data = rest + data
        n = len(data) // 2 * 2
        rest = data[n:]
        if n:
            yield [(np.frombuffer(data[:n], dtype="<i2").astype(np.float32) / 32768.0, clock())]


def drive(stream: Any, chunks: Chunks, writer: Any = None, rate: int = 16000,
          on_frame: Callable[[Any], None] | None = None) -> None:
    """Push the audio into ``stream`` as it comes (all that is waiting before each pull, so a slow model
    drops frames instead of falling behind), write the sound and each frame pulled to ``writer``."""

    def emit(frames: list[Any]) -> None:
        for frame in frames:
            if writer is not None:
                writer.write_frame(frame.image, frame.index)
            if on_frame is not None:
                on_frame(frame)

    for batch in chunks:
        for chunk, at in batch:
            stream.push_audio(chunk, sample_rate=rate, at=at)
            if writer is not None:
                writer.write_audio(chunk)
        emit(stream.pull())
    stream.finish()
    emit(stream.pull())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``pcavs live`` options to ``parser``."""
    from .pipeline import NOISE_MODES, PRECISIONS

    io = parser.add_argument_group("inputs and output")
    io.add_argument("--audio", required=True, metavar="FILE|-",
                    help="speech file played in real time, or - for raw s16le mono PCM on stdin at --rate")
    io.add_argument("--rate", type=int, default=16000, metavar="HZ", help="sample rate of --audio - (default 16000)")
    io.add_argument("--identity", default=None, metavar="PHOTO",
                    help="photo of the person (default: the built-in demo identity)")
    io.add_argument("--pose", default=None, metavar="VIDEO|TRACK",
                    help="head motion: a video or its track (.npz); default: the photo's own pose")
    io.add_argument("--pose-mode", choices=("video", "still", "frontal"), default=None,
                    help="video (default with --pose), still (the photo's pose), frontal (zero pose code)")
    io.add_argument("--weights", default=None, metavar="DIR", help="weights folder (default: the built-in model)")
    io.add_argument("-o", "--output", required=True, metavar="OUT.mp4|OUT.m3u8",
                    help="fragmented MP4 or HLS playlist, readable while it grows")
    io.add_argument("-y", "--overwrite", action="store_true", help="replace the output if it exists")
    lv = parser.add_argument_group("live")
    lv.add_argument("--chunk-ms", type=float, default=20.0, metavar="MS",
                    help="audio delivered in chunks of this many ms (a file's pace; default 20)")
    lv.add_argument("--max-delay", type=float, default=0.08, metavar="S",
                    help="a frame that would come out more than S seconds after its audio is complete is "
                         "dropped (the previous picture held); default 0.08")
    lv.add_argument("--no-pacing", action="store_true", help="never drop frames (latency grows if the model is slow)")
    lv.add_argument("--gain", type=float, default=None,
                    help="fixed gain on the audio before the mel (default: a running RMS normalisation)")
    lv.add_argument("--batch-size", type=int, default=1, metavar="N", help="most frames per model call (default 1)")
    gen = parser.add_argument_group("generation")
    gen.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto", help="default auto")
    gen.add_argument("--precision", choices=PRECISIONS, default="fp32", help="fp32 (default) or bf16")
    gen.add_argument("--threads", type=int, default=0, metavar="N",
                     help="CPU threads for torch and numpy's BLAS (0: their choice)")
    gen.add_argument("--seed", type=int, default=0, help="seed of the generator noise")
    gen.add_argument("--noise", choices=NOISE_MODES, default="random", help="generator noise")
    gen.add_argument("--mouth-weight", type=float, default=None, metavar="W", help="scale of the speech feature")
    gen.add_argument("--keyframe-s", type=float, default=1.0, metavar="S",
                     help="seconds between keyframes = fragment / segment length (default 1)")


def run(args: argparse.Namespace) -> int:
    """Run ``pcavs live``; returns the exit status."""
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C): stopped; the output is valid up to its last fragment", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    from pcavs.errors import UserError

    from .demo import DEMO_INPUTS, DEMO_WEIGHTS
    from .live_output import LiveWriter, check_live_output
    from .pipeline import GenerationOptions, TalkingFacePipeline, check_weights
    from .sources import InputError, load_audio
    from .stream import TalkingFaceStream
    from .stream_pacing import Pacing

    try:
        if args.chunk_ms <= 0 or args.rate < 1000 or args.batch_size < 1 or args.max_delay < 0:
            raise InputError("--chunk-ms must be > 0, --rate >= 1000, --batch-size >= 1 and --max-delay >= 0")
        out = check_live_output(args.output, args.overwrite)
        if args.audio != "-" and Path(args.audio).resolve() == out.resolve():
            raise InputError(f"{out}: the output is the audio input; choose another -o")
        wave = None
        if args.audio != "-":
            wave, _, _ = load_audio(args.audio)  # decoded and checked before anything is written
        weights = args.weights or DEMO_WEIGHTS
        check_weights(weights)
        if args.threads:
            from pcavs.device import set_cpu_threads

            set_cpu_threads(args.threads)
        identity, landmarks = args.identity, None
        if identity is None:
            import json

            identity = DEMO_INPUTS / "identity.png"
            landmarks = np.asarray(json.loads((DEMO_INPUTS / "landmarks.json").read_text())["identity"])
        pipe = TalkingFacePipeline.from_pretrained(weights, device=args.device)
        opts = GenerationOptions(seed=args.seed, noise=args.noise, precision=args.precision,
                                 mouth_weight=args.mouth_weight, batch_size=args.batch_size)
        stream = TalkingFaceStream.open(pipe, identity, args.pose, args.pose_mode, options=opts,
                                        identity_landmarks=landmarks, gain=args.gain,
                                        pacing=None if args.no_pacing else Pacing(args.max_delay))
    except UserError as exc:  # MediaError, InputError, CheckpointError, ...
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rate = 16000 if wave is not None else args.rate
    chunks = paced_chunks(wave, rate, args.chunk_ms) if wave is not None else pcm_chunks(sys.stdin.fileno())
    size = (pipe.image_size, pipe.image_size)
    with LiveWriter(out, size, fps=stream.fps, sample_rate=rate, keyframe_s=args.keyframe_s) as writer:
        try:
            drive(stream, chunks, writer, rate)
        finally:
            stream.close()
    print(f"wrote {out}: {stream.stats.summary()}")
    return 0
