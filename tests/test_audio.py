"""The mel front-end against the official (lws + librosa) reference features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from pcavs import audio as A

REF = Path(__file__).parent / "data" / "official-v0" / "reference.safetensors"


@pytest.fixture(scope="module")
def ref() -> dict:
    with safe_open(str(REF), "pt") as f:
        out = {k: f.get_tensor(k) for k in ("input.waveform", "audio.waveform_normalized", "audio.mel")}
        out["input.spectrogram"] = f.get_tensor("input.spectrogram")
        out["frames"] = json.loads(f.metadata()["frames"])
    return out


def test_normalization_matches_reference(ref: dict) -> None:
    got = A.normalize_rms(ref["input.waveform"])
    diff = np.abs(got - ref["audio.waveform_normalized"].double().numpy()).max()
    assert diff < 1e-6, diff
    assert np.sqrt(np.mean(got**2)) == pytest.approx(0.1, rel=1e-12)


def test_mel_matches_reference(ref: dict) -> None:
    mel = A.melspectrogram(ref["input.waveform"])
    assert mel.dtype == torch.float32 and mel.shape == ref["audio.mel"].shape == (107, 80)
    diff = (mel.double() - ref["audio.mel"].double()).abs().max().item()
    print(f"mel max abs diff vs official: {diff:.3g}")
    assert diff < 1e-6  # float32 rounding of the reference; the contract is 1e-4


def test_spectrogram_windows_match_reference(ref: dict) -> None:
    mel = A.melspectrogram(ref["input.waveform"])
    win = A.mel_windows(mel, ref["frames"])
    assert win.shape == ref["input.spectrogram"].shape == (2, 1, 80, 20)
    diff = (win - ref["input.spectrogram"]).abs().max().item()
    print(f"spectrogram window max abs diff vs official: {diff:.3g}")
    assert diff < 1e-6


def test_stft_frame_count_follows_lws_rule() -> None:
    # len % 160 == 0: (len + 2240 - 1280) // 160 + 1; otherwise one more frame.
    assert A.num_stft_frames(16000) == 107
    assert A.num_stft_frames(16001) == (16001 + 960) // 160 + 2 == 108
    assert A.num_stft_frames(16159) == 108
    assert A.num_stft_frames(16160) == 108
    assert A.num_stft_frames(160) == 8
    for n in (1, 159, 160, 161, 1280, 12345):
        assert A.stft_magnitude(np.random.default_rng(n).standard_normal(n)).shape == (
            A.num_stft_frames(n),
            641,
        )


def test_stft_window_and_padding() -> None:
    # An impulse at sample s lands in frames whose window covers s + 1120 (left padding).
    x = np.zeros(1600)
    x[800] = 1.0
    mag = A.stft_magnitude(x)
    w = A._lws_window(1280)
    for m in range(mag.shape[0]):
        n = 800 + 1120 - 160 * m
        expect = w[n] if 0 <= n < 1280 else 0.0
        np.testing.assert_allclose(mag[m], expect, atol=1e-12)


def test_mel_filterbank_properties() -> None:
    fb = A.mel_filterbank()
    assert fb.shape == (80, 641) and fb.dtype == torch.float64
    assert (fb >= 0).all() and (fb.sum(1) > 0).all()
    hz = np.linspace(0, 8000, 641)
    peaks = hz[fb.argmax(1).numpy()]
    assert 125 <= peaks[0] < 200 and 7000 < peaks[-1] <= 7600
    assert np.all(np.diff(peaks) > 0)
    # Slaney scale: linear below 1 kHz, log above; round trip.
    assert A.hz_to_mel(1000.0) == pytest.approx(15.0)
    f = np.array([0.0, 125.0, 999.0, 1000.0, 4000.0, 7600.0])
    np.testing.assert_allclose(A.mel_to_hz(A.hz_to_mel(f)), f, atol=1e-9)


def test_silence_is_finite() -> None:
    for n in (0, 1, 16000):
        z = np.zeros(n)
        assert np.all(A.normalize_rms(z) == 0)
        mel = A.melspectrogram(z)
        assert torch.isfinite(mel).all() and (mel == 0).all()
        assert mel.shape == (A.num_stft_frames(n), 80)


def test_input_types_and_shape_errors() -> None:
    x = np.random.default_rng(0).standard_normal(3200).astype(np.float32)
    a = A.melspectrogram(x)
    b = A.melspectrogram(torch.from_numpy(x))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="mono"):
        A.melspectrogram(np.zeros((2, 100)))


def test_blockwise_stft_equals_single_block(monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.random.default_rng(1).standard_normal(16000 * 2 + 37)
    full = A.melspectrogram(x)
    monkeypatch.setattr(A, "_STFT_BLOCK", 7)
    assert torch.equal(A.melspectrogram(x), full)


def test_num_video_frames() -> None:
    assert A.num_video_frames(0) == 0
    assert A.num_video_frames(639) == 0
    assert A.num_video_frames(640) == 1
    assert A.num_video_frames(16000) == 25
    assert A.num_video_frames(16639) == 25
    assert A.num_video_frames(16640) == 26
    assert A.num_video_frames(48000, fps=30, sr=48000) == 30
    with pytest.raises(ValueError):
        A.num_video_frames(-1)


def test_window_indexing_and_padding() -> None:
    rows = 50
    mel = torch.arange(rows, dtype=torch.float32)[:, None].repeat(1, 80) + 1  # row r holds r + 1
    assert A.window_start_row(2) == 0 and A.window_start_row(5) == 12 and A.window_start_row(0) == -8
    w = A.mel_windows(mel, [5])
    assert w.shape == (1, 1, 80, 20)
    assert torch.equal(w[0, 0, 0], torch.arange(12, 32, dtype=torch.float32) + 1)
    assert torch.equal(A.mel_window(mel, 5), w[0])
    # Frame 0 starts at row -8: 8 silent (zero) columns, then rows 0..11.
    w0 = A.mel_window(mel, 0)[0, 0]
    assert torch.equal(w0[:8], torch.zeros(8)) and torch.equal(w0[8:], torch.arange(12.0) + 1)
    # Past the end: rows 44..49 then zeros.
    last = A.mel_window(mel, 13)[0, 0]  # start row 44
    assert torch.equal(last[:6], torch.arange(44.0, 50.0) + 1) and torch.equal(last[6:], torch.zeros(14))
    # Completely outside: all silence.
    assert torch.equal(A.mel_window(mel, 100), torch.zeros(1, 80, 20))
    # start/stop form equals the explicit list; iterator covers every frame once.
    assert torch.equal(A.mel_windows(mel, 3, 9), A.mel_windows(mel, list(range(3, 9))))
    got = [(s, b.shape[0]) for s, b in A.iter_mel_windows(mel, 12, 5)]
    assert got == [(0, 5), (5, 5), (10, 2)]
    with pytest.raises(TypeError):
        A.mel_windows(mel, 3)


def test_every_video_frame_has_a_window() -> None:
    x = np.random.default_rng(2).standard_normal(16000)
    mel = A.melspectrogram(x)
    t = A.num_video_frames(x.size)
    wins = A.mel_windows(mel, 0, t)
    assert wins.shape == (t, 1, 80, 20)
    # Official range 2..T-3 never needs padding: those windows are exact slices.
    for f in range(2, t - 2):
        s = 4 * (f - 2)
        assert torch.equal(wins[f, 0], mel[s : s + 20].T)
