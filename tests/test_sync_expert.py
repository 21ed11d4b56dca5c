"""The SynthTalk sync expert: the offset sign, the unreliable verdict, the shipped weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pcavs.audio import mel_windows, melspectrogram
from pcavs.checkpoint import CheckpointError
from pcavs.eval.evaluate import VideoScores, format_table
from pcavs.eval.sync import measure_sync
from pcavs.eval.syncexpert import BUILTIN_SYNC_EXPERT, SyncExpertNet, load_sync_expert, mouth_crops, save_sync_expert
from pcavs.eval.syncexpert_train import delay_audio, render_training_clip


class _MelExpert:
    """Audio 'embeddings' = the project's mel window of each frame; the video 'sees' the true audio's."""

    name, threshold = "mel", 0.0

    def audio_features(self, wave: np.ndarray, num_frames: int) -> np.ndarray:
        w = mel_windows(melspectrogram(np.asarray(wave, np.float32)), 0, num_frames)
        return w.reshape(num_frames, -1).double().numpy() - 0.5

    def embed(self, visual: np.ndarray) -> np.ndarray:
        return visual


def _noise_speech(seconds: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    env = np.repeat(rng.uniform(0, 1, int(seconds * 25)) ** 3, 640)  # loudness changing every frame
    return (rng.normal(0, 0.2, env.size) * env).astype(np.float32)


@pytest.mark.parametrize("k", [3, -3])
def test_offset_sign_delaying_the_audio_gives_plus(k: int) -> None:
    """Documented sign: the audio delayed by k frames (the sound comes late) -> offset +k."""
    wave = _noise_speech()
    expert = _MelExpert()
    visual = expert.audio_features(wave, 75)  # the picture follows the original sound
    res = measure_sync(expert, delay_audio(wave, k), visual, 8)[0]
    assert res.offset == k
    assert res.reliable


def test_delay_moves_samples() -> None:
    w = np.arange(1, 2001, dtype=np.float32)
    d = delay_audio(w, 1)  # 1 frame = 640 samples at 16 kHz, 25 fps
    assert d.shape == w.shape and (d[:640] == 0).all() and d[640] == 1
    a = delay_audio(w, -1)
    assert a[0] == 641 and (a[-640:] == 0).all()


def test_shipped_expert_finds_a_known_shift_on_unseen_synthtalk() -> None:
    """The shipped expert on a clip of a seed training never used: delay +3 -> +3, advance 3 -> -3."""
    expert = load_sync_expert()
    mouths, audio = render_training_clip(9501, 0, seconds=3.0)
    visual = mouths.reshape(len(mouths), -1).astype(np.float64)
    for k in (3, -3):
        res = measure_sync(expert, delay_audio(audio, k), visual, 15)[0]
        assert (res.offset, res.reliable) == (k, True), (k, res.offset, res.confidence)
    # the same mouths against another clip's speech: far less confident than the right speech
    _, other = render_training_clip(9501, 1, seconds=3.0)
    assert measure_sync(expert, other, visual, 15)[0].confidence < 0.8 * res.confidence


def test_shipped_expert_is_small_and_calibrated() -> None:
    size = (BUILTIN_SYNC_EXPERT / "model.safetensors").stat().st_size
    assert size < 5_000_000
    meta = json.loads((BUILTIN_SYNC_EXPERT / "config.json").read_text())
    assert meta["format"] == "pcavs-sync-expert" and meta["threshold"] > 0
    assert meta["train"]["seed"] != 9300 and meta["calibration"]["seed"] != 9300  # the benchmark's seed


def test_unreliable_in_table_and_json() -> None:
    s = VideoScores(generated="a.mp4", sync_offset=None, sync_confidence=0.01, sync_reliable=False,
                    sync_expert="synthtalk-sync", sync_threshold=0.1, ssim=0.5)
    row = format_table([s]).splitlines()[2]
    assert "unreliable" in row
    d = s.to_dict()
    assert d["sync_offset"] is None and d["sync_reliable"] is False and d["sync_confidence"] == 0.01


def test_expert_below_threshold_is_unreliable() -> None:
    expert = _MelExpert()
    expert.threshold = 1e9
    wave = _noise_speech()
    res = measure_sync(expert, wave, expert.audio_features(wave, 75), 8)[0]
    assert not res.reliable and res.threshold == 1e9 and res.expert == "mel"


def test_save_load_round_trip_and_errors(tmp_path) -> None:
    torch.manual_seed(0)
    net = SyncExpertNet()
    save_sync_expert(net, tmp_path / "e", {"name": "e", "width": 16, "dim": 64, "threshold": 0.2})
    ex = load_sync_expert(tmp_path / "e")
    assert ex.threshold == 0.2
    x = torch.rand(2, 1, 80, 20)
    assert torch.allclose(ex.net.embed_audio(x), net.eval().embed_audio(x))
    with pytest.raises(CheckpointError, match="train-sync"):
        load_sync_expert(tmp_path / "missing")


def test_mouth_crops_scale_with_the_crop_size() -> None:
    img = np.zeros((224, 224, 3), np.uint8)
    img[104:168, 64:160] = 200  # exactly the mouth box
    small = np.asarray(torch.nn.functional.interpolate(torch.from_numpy(img).permute(2, 0, 1)[None].float(),
                                                       size=112).round()[0].permute(1, 2, 0).byte())
    for c in (img, small):
        m = mouth_crops(c[None])[0]
        assert m.shape == (32, 48) and m.min() > 190


@pytest.mark.parametrize("command", ["evaluate", "report"])
def test_offset_sign_is_stated_in_help_and_readme(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The sign pinned by test_offset_sign_delaying_the_audio_gives_plus is the one the user reads."""
    from pathlib import Path

    from pcavs.cli import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "+k means the sound comes k frames late (delay the audio 3 frames: +3)" in help_text
    readme = " ".join((Path(__file__).resolve().parent.parent / "README.md").read_text().split())
    assert "an offset of `+k` means the mouth at frame `t` matches the sound at frame `t + k`: the sound " \
        "comes `k` frames late" in readme and "Delay a video's audio by 3 frames and the offset is +3" in readme


def test_wide_training_crops_hold_the_mouth_crop_and_the_plain_warp_returns_it() -> None:
    """Training caches wide crops; their centre is exactly evaluate's mouth crop, and the unjittered
    warp of a stack gives it back (so jitter is the only difference between training and evaluation)."""
    from pcavs.eval.syncexpert import central, mouth_stacks
    from pcavs.eval.syncexpert_train import TrackerJitter, warp_stacks

    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (6, 224, 224, 3), dtype=np.uint8)
    wide = mouth_crops(crops, wide=True)
    assert wide.shape == (6, 64, 96)
    np.testing.assert_array_equal(central(wide), mouth_crops(crops))
    stacks = mouth_stacks(torch.from_numpy(wide), torch.arange(6))
    gen = torch.Generator().manual_seed(0)
    plain = warp_stacks(stacks, gen, None)
    assert torch.allclose(plain[:, 2], torch.from_numpy(central(wide)).float(), atol=1e-3)
    moved = warp_stacks(stacks, gen, TrackerJitter())
    assert moved.shape == (6, 5, 32, 48) and (moved - plain).abs().mean() > 10  # the box really moves
    # zoomed out to half size, the whole wide crop lands in the mouth crop
    half = warp_stacks(stacks, gen, TrackerJitter(zoom=(0.5, 0.5), shift=0, angle=0, frame_shift=0, frame_zoom=0))
    want = torch.nn.functional.avg_pool2d(torch.from_numpy(wide).float()[:, None], 2)[:, 0]
    assert (half[:, 2] - want).abs().mean() < 1.0


def test_calibration_threshold_keeps_other_speech_out() -> None:
    """The threshold is at least the 95th percentile of the no-answer curves (each clip's mouths
    against every other clip's speech: n (n - 1) of them) and at least the lowest right confidence."""
    from pcavs.eval.syncexpert import SyncExpert
    from pcavs.eval.syncexpert_train import calibrate

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    clips = [{"mouths": rng.integers(0, 256, (30, 32, 48), dtype=np.uint8),
              "mel": melspectrogram(_noise_speech(1.2) * (i + 1)).numpy()} for i in range(3)]
    threshold, rows = calibrate(SyncExpert(SyncExpertNet().eval(), 0.0), clips)
    shifted, null = rows[:-1], rows[-1]
    assert len(shifted) == 3 * 11 and [r[0] for r in shifted[:11]] == list(range(-5, 6))
    assert null[0] == "other speech" and null[3] == 6
    assert threshold >= null[2] - 1e-4 and threshold >= min(r[2] for r in shifted) - 1e-4
