"""``pcavs demo``: the built-in model on the built-in inputs, as one side-by-side video.

demo.mp4 shows identity photo | pose source | result, each 256x256, with the speech. Inputs are
SynthTalk people the model never saw (``pcavs/assets/demo``); the model is the CPU recipe's
``small`` preset (``pcavs/assets/weights/synthtalk-small``). The exact landmarks shipped with the
inputs stand in for face detection, which is tuned for real faces.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pcavs.media import VideoWriter, read_audio, read_image, read_video_frames

from .pipeline import generate_video
from .posesource import pingpong_index

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEMO_INPUTS = ASSETS / "demo"
DEMO_WEIGHTS = ASSETS / "weights" / "synthtalk-small"
PANEL = 256


def _panel(img: np.ndarray) -> np.ndarray:
    if img.shape[:2] == (PANEL, PANEL):
        return img
    return np.asarray(Image.fromarray(img).resize((PANEL, PANEL), Image.BICUBIC))


def run_demo(
    output: str | Path = "demo.mp4",
    weights: str | Path = DEMO_WEIGHTS,
    inputs: str | Path = DEMO_INPUTS,
    progress: bool = True,
    device: str = "cpu",
) -> tuple[Path, str]:
    """Write the side-by-side demo video; returns its path and the pipeline's summary line."""
    inputs, output = Path(inputs), Path(output)
    landmarks = json.loads((inputs / "landmarks.json").read_text())
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pcavs-demo-") as tmp:
        result = generate_video(
            inputs / "identity.png", inputs / "speech.wav", Path(tmp) / "result.mp4",
            weights=weights, pose=inputs / "pose.mp4", pose_mode="video", device=device, paste_back=True,
            identity_landmarks=np.asarray(landmarks["identity"]),
            pose_landmarks=[np.asarray(lm) for lm in landmarks["pose"]],
            progress=progress, noise="const",
        )  # fmt: skip
        photo = _panel(read_image(inputs / "identity.png"))
        pose_frames = [_panel(f) for f in read_video_frames(inputs / "pose.mp4")]
        audio = read_audio(inputs / "speech.wav")
        with VideoWriter(output, audio=audio) as writer:
            for i, frame in enumerate(read_video_frames(result.output)):
                pose = pose_frames[pingpong_index(i, len(pose_frames))]
                writer.write(np.concatenate([photo, pose, _panel(frame)], axis=1)[None])
    summary = (
        f"wrote {output}: identity | pose source | result, {result.num_frames} frames "
        f"({result.duration:.2f} s) in {time.perf_counter() - t0:.1f} s"
    )
    return output, summary
