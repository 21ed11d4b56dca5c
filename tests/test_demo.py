"""The built-in demo: shipped inputs, the side-by-side video, and the shipped model."""

from __future__ import annotations

import json

import numpy as np
import torch

from pcavs.checkpoint import load_model, save_weights
from pcavs.config import preset
from pcavs.infer.demo import DEMO_INPUTS, DEMO_WEIGHTS, run_demo
from pcavs.media import probe_output, read_audio
from pcavs.model import PCAVS


def test_demo_inputs_are_shipped():
    names = {p.name for p in DEMO_INPUTS.iterdir()}
    assert {"identity.png", "pose.mp4", "speech.wav", "landmarks.json"} <= names
    lm = json.loads((DEMO_INPUTS / "landmarks.json").read_text())
    assert np.asarray(lm["identity"]).shape == (68, 2)
    assert len(lm["pose"]) == 100 and np.asarray(lm["pose"][0]).shape == (68, 2)


def test_demo_video_side_by_side(tmp_path):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    save_weights(PCAVS(preset("small")), tmp_path / "w")
    out, summary = run_demo(tmp_path / "demo.mp4", weights=tmp_path / "w", progress=False)
    info = probe_output(out)
    video, audio = info.stream("video"), info.stream("audio")
    assert (video.width, video.height) == (768, 256)
    frames = read_audio(DEMO_INPUTS / "speech.wav").size * 25 // 16000
    assert video.frames == frames
    assert audio is not None and "identity | pose source | result" in summary


def test_builtin_model_loads_and_is_small():
    size = sum(p.stat().st_size for p in DEMO_WEIGHTS.iterdir())
    assert size <= 25 * 2**20
    model = load_model(DEMO_WEIGHTS)
    assert model.cfg.name == "small" and model.cfg.image_size == 64
