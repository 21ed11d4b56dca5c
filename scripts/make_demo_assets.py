"""Render the built-in demo inputs (SynthTalk people never used in training or the benchmark).

    .venv/bin/python scripts/make_demo_assets.py [pcavs/assets/demo]

Writes identity.png (person A), pose.mp4 (person B talking, with B's voice), speech.wav (person C's
words) and landmarks.json (the exact 68-point landmarks of the photo and of every pose frame).
"""

from __future__ import annotations

import json
import sys
import wave
from pathlib import Path

import numpy as np
from PIL import Image

from pcavs.media import VideoWriter
from pcavs.synth import render, sample_pose, speech_clip
from pcavs.synth.benchmark import person

DEMO_SEED = 9_100_000  # its own range: not a training, benchmark or estimator seed
SIZE = 256
SECONDS = 4.0


def write_wav(path: Path, audio: np.ndarray, rate: int = 16000) -> None:
    pcm = (np.clip(audio, -1, 1) * 32767).round().astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    a, b, c = DEMO_SEED + 1, DEMO_SEED + 2, DEMO_SEED + 3
    photo = render(person(a), sample_pose(a, 1, intensity=0.3), np.zeros(16000), SIZE)
    Image.fromarray(photo.frames[0]).save(out / "identity.png")
    speech, script = speech_clip(c, SECONDS - 0.5)
    write_wav(out / "speech.wav", speech)
    own_voice, _ = speech_clip(b, SECONDS)
    n = int(SECONDS * 25)
    source = render(person(b), sample_pose(b, n, intensity=1.0), own_voice, SIZE, blink_seed=b)
    with VideoWriter(out / "pose.mp4", audio=own_voice[: n * 640], preset="slow", crf=20) as writer:
        writer.write(source.frames)
    landmarks = {
        "identity": np.round(photo.ground_truth[0]["landmarks"], 2).tolist(),
        "pose": [np.round(gt["landmarks"], 2).tolist() for gt in source.ground_truth],
        "note": "exact SynthTalk landmarks (68-point iBUG order) of identity.png and each pose.mp4 frame",
        "speech": script,
    }
    (out / "landmarks.json").write_text(json.dumps(landmarks, separators=(",", ":")))
    print(f"wrote {out}: identity.png, pose.mp4 ({n} frames), speech.wav ({speech.size / 16000:.2f} s)")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "pcavs/assets/demo"))
