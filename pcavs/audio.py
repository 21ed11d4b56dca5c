"""Mel-spectrogram front-end of PC-AVS, reproduced exactly without ``lws`` or ``librosa``.

The official code computes, for a 16 kHz mono waveform ``x``:

1. ``x * 0.1 / rms(x)`` (RMS normalisation to 0.1);
2. ``|lws.lws(1280, 160, mode="speech").stft(x)|`` (1280-sample frames every 160 samples);
3. a librosa Slaney mel filterbank (80 bins, 125-7600 Hz);
4. ``20*log10(max(mel, 1e-5)) - 20`` followed by ``clip((S + 100) / 100, 0, 1)``.

Rows of the result are 10 ms hops. At 25 fps a video frame spans 4 rows, and video frame ``i`` is
driven by the 20-row (200 ms) window starting at row ``4 * (i - 2)``, i.e. centred on the frame.
All arithmetic is done in float64 (as numpy does in the reference); results are float32 tensors.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

__all__ = [
    "AudioConfig",
    "DEFAULT_AUDIO",
    "normalize_rms",
    "num_stft_frames",
    "stft_magnitude",
    "hz_to_mel",
    "mel_to_hz",
    "mel_filterbank",
    "melspectrogram",
    "num_video_frames",
    "window_start_row",
    "window_rows_of",
    "rows_for_frames",
    "mel_window",
    "mel_windows",
    "iter_mel_windows",
]


@dataclass(frozen=True)
class AudioConfig:
    """Constants of the official audio pipeline (do not change them for pretrained weights)."""

    sample_rate: int = 16000
    n_fft: int = 1280  # lws window length: 80 ms
    hop: int = 160  # 10 ms -> one mel row
    n_mels: int = 80
    fmin: float = 125.0
    fmax: float = 7600.0
    fps: int = 25
    window_rows: int = 20  # 200 ms of context per video frame
    rows_per_frame: int = 4  # 40 ms video frame / 10 ms hop
    # Video frame i uses rows starting at rows_per_frame * (i - mouth_offset_frames): the window
    # covers frames i-2 .. i+2, so the mouth at frame i sees 80 ms of past and 120 ms of future audio.
    mouth_offset_frames: int = 2
    rms: float = 0.1
    min_level_db: float = -100.0
    ref_level_db: float = 20.0
    amp_floor: float = 1e-5

    @property
    def n_freq(self) -> int:
        return self.n_fft // 2 + 1


DEFAULT_AUDIO = AudioConfig()

# STFT frames processed per block: bounds peak memory (~block * n_fft * 8 bytes) for long audio.
_STFT_BLOCK = 2048


def _as_float64(wave: np.ndarray | torch.Tensor | Sequence[float]) -> np.ndarray:
    if isinstance(wave, torch.Tensor):
        wave = wave.detach().cpu().to(torch.float64).numpy()
    arr = np.asarray(wave, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D mono waveform, got shape {tuple(arr.shape)}; downmix it first")
    return arr


def normalize_rms(wave: np.ndarray | torch.Tensor, target: float = DEFAULT_AUDIO.rms) -> np.ndarray:
    """Scale ``wave`` so that its RMS equals ``target`` (float64). Silence is returned unchanged."""
    x = _as_float64(wave)
    if x.size == 0:
        return x.copy()
    rms = math.sqrt(float(np.mean(x * x)))
    # An all-zero (or denormal-only) input would divide by ~0 and give inf/NaN: keep it silent.
    if not math.isfinite(rms) or rms < 1e-12:
        return np.zeros_like(x)
    return x * (target / rms)


def num_stft_frames(num_samples: int, cfg: AudioConfig = DEFAULT_AUDIO) -> int:
    """Number of STFT frames lws (mode="speech") produces for ``num_samples`` samples."""
    # lws pads n_fft - hop zeros on both sides, then adds one frame when the length is not a
    # multiple of the hop (its ceil-like rule); reproduced literally.
    pad = 2 * (cfg.n_fft - cfg.hop)
    m = (num_samples + pad - cfg.n_fft) // cfg.hop + 1
    if num_samples % cfg.hop != 0:
        m += 1
    return m


@lru_cache(maxsize=4)
def _lws_window(n_fft: int) -> np.ndarray:
    # lws "speech" analysis window: half a periodic-shifted sqrt-Hann, normalised for hop n_fft/8.
    n = np.arange(n_fft, dtype=np.float64)
    w = 0.5 * np.sqrt(0.5 - 0.5 * np.cos(2.0 * np.pi * (n + 0.5) / n_fft))
    w.setflags(write=False)
    return w


def _stft_blocks(x: np.ndarray, cfg: AudioConfig) -> Iterator[tuple[int, np.ndarray]]:
    # Yields (first_frame, |STFT| block); blocks bound peak memory for long inputs.
    m = num_stft_frames(x.size, cfg)
    left = cfg.n_fft - cfg.hop
    padded = np.zeros((m - 1) * cfg.hop + cfg.n_fft, dtype=np.float64)
    padded[left : left + x.size] = x
    win = _lws_window(cfg.n_fft)
    frames = np.lib.stride_tricks.sliding_window_view(padded, cfg.n_fft)[:: cfg.hop]
    for s in range(0, m, _STFT_BLOCK):
        yield s, np.abs(np.fft.rfft(frames[s : s + _STFT_BLOCK] * win, axis=1))


def stft_magnitude(wave: np.ndarray | torch.Tensor, cfg: AudioConfig = DEFAULT_AUDIO) -> np.ndarray:
    """|STFT| identical to ``lws.lws(1280, 160, mode="speech").stft(x)``; shape (frames, n_fft//2+1).

    lws pads 1120 zeros on the left and zeros on the right up to ``(M-1)*160 + 1280`` samples,
    then windows 1280-sample frames every 160 samples.
    """
    x = _as_float64(wave)
    out = np.empty((num_stft_frames(x.size, cfg), cfg.n_freq), dtype=np.float64)
    for s, block in _stft_blocks(x, cfg):
        out[s : s + block.shape[0]] = block
    return out


# Slaney (Auditory Toolbox) mel scale: linear below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney hz -> mel (librosa ``htk=False``)."""
    f = np.asarray(hz, dtype=np.float64)
    mel = f / _F_SP
    log_part = _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(f >= _MIN_LOG_HZ, log_part, mel)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Slaney mel -> hz (inverse of :func:`hz_to_mel`)."""
    m = np.asarray(mel, dtype=np.float64)
    hz = m * _F_SP
    log_part = _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(m, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(m >= _MIN_LOG_MEL, log_part, hz)


@lru_cache(maxsize=4)
def _mel_filterbank_np(cfg: AudioConfig) -> np.ndarray:
    fft_hz = np.linspace(0.0, cfg.sample_rate / 2.0, cfg.n_freq)
    mel_pts = np.linspace(hz_to_mel(cfg.fmin), hz_to_mel(cfg.fmax), cfg.n_mels + 2)
    edges_hz = mel_to_hz(mel_pts)
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    # Slaney normalisation: each triangle has unit area in Hz (2 / bandwidth).
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    # librosa returns the filterbank as float32; the official features were computed with it.
    weights = weights.astype(np.float32).astype(np.float64)
    weights.setflags(write=False)
    return weights


def mel_filterbank(cfg: AudioConfig = DEFAULT_AUDIO) -> torch.Tensor:
    """Slaney-normalised mel filterbank, shape (n_mels, n_fft//2+1), float64."""
    return torch.from_numpy(_mel_filterbank_np(cfg).copy())


def melspectrogram(
    wave: np.ndarray | torch.Tensor, normalize: bool = True, cfg: AudioConfig = DEFAULT_AUDIO
) -> torch.Tensor:
    """Official normalised log-mel features in [0, 1], shape (frames, n_mels), float32.

    ``wave`` is 16 kHz mono; ``normalize`` applies the RMS normalisation first (as the official
    inference does). Computed in float64 and in blocks so long inputs stay memory-bounded.
    """
    x = normalize_rms(wave, cfg.rms) if normalize else _as_float64(wave)
    basis = _mel_filterbank_np(cfg)
    out = np.empty((num_stft_frames(x.size, cfg), cfg.n_mels), dtype=np.float32)
    for s, mag in _stft_blocks(x, cfg):
        mel = mag @ basis.T
        db = 20.0 * np.log10(np.maximum(mel, cfg.amp_floor)) - cfg.ref_level_db
        out[s : s + mel.shape[0]] = np.clip((db - cfg.min_level_db) / -cfg.min_level_db, 0.0, 1.0)
    return torch.from_numpy(out)


def num_video_frames(num_samples: int, fps: int = DEFAULT_AUDIO.fps, sr: int = DEFAULT_AUDIO.sample_rate) -> int:
    """Video frames covered by ``num_samples`` of audio: ``floor(num_samples / sr * fps)``."""
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    return (num_samples * fps) // sr  # exact integer floor, no float rounding at boundaries


def window_start_row(frame: int, cfg: AudioConfig = DEFAULT_AUDIO) -> int:
    """First mel row of the window driving video frame ``frame`` (may be negative)."""
    return cfg.rows_per_frame * (frame - cfg.mouth_offset_frames)


def window_rows_of(frame: int, cfg: AudioConfig = DEFAULT_AUDIO) -> tuple[int, int]:
    """The mel rows ``[start, stop)`` of video frame ``frame``'s window (``start`` may be negative): the
    one statement of the frame <-> window pairing, used by inference, the dataset and preprocessing."""
    start = window_start_row(frame, cfg)
    return start, start + cfg.window_rows


def rows_for_frames(num_frames: int, cfg: AudioConfig = DEFAULT_AUDIO) -> int:
    """Mel rows the windows of frames ``0 .. num_frames-1`` read (``4 T + 8`` at the official constants):
    what preprocessing stores per clip."""
    return window_rows_of(num_frames - 1, cfg)[1] if num_frames > 0 else 0


def mel_window(mel: torch.Tensor, frame: int, cfg: AudioConfig = DEFAULT_AUDIO) -> torch.Tensor:
    """Window for one video frame, shape (1, n_mels, window_rows); see :func:`mel_windows`."""
    return mel_windows(mel, [frame], cfg=cfg)[0]


def mel_windows(
    mel: torch.Tensor,
    frames: Sequence[int] | int | None = None,
    stop: int | None = None,
    cfg: AudioConfig = DEFAULT_AUDIO,
) -> torch.Tensor:
    """Model inputs for several video frames, shape (n, 1, n_mels, window_rows).

    Call as ``mel_windows(mel, start, stop)`` for the frame range ``[start, stop)`` or
    ``mel_windows(mel, [i, j, ...])`` for explicit frames. Frame ``f`` gets
    ``mel[4*(f-2) : 4*(f-2)+20].T`` (:func:`window_rows_of`). Rows outside the mel are filled with 0, which in this
    normalised scale is the -100 dB floor, i.e. silence; that is what the audio outside the clip
    is (the STFT itself zero-pads), whereas edge replication would invent sound at the borders.
    The official code only generates frames 2..T-3, where no padding is needed.
    """
    if mel.ndim != 2 or mel.shape[1] != cfg.n_mels:
        raise ValueError(f"expected mel of shape (rows, {cfg.n_mels}), got {tuple(mel.shape)}")
    if frames is None:
        raise TypeError("pass either a start frame and stop, or a sequence of frame indices")
    if isinstance(frames, int):
        if stop is None:
            raise TypeError("mel_windows(mel, start, stop) needs stop")
        idx = list(range(frames, stop))
    else:
        if stop is not None:
            raise TypeError("stop is only valid with an integer start frame")
        idx = [int(f) for f in frames]
    rows = mel.shape[0]
    out = mel.new_zeros((len(idx), 1, cfg.n_mels, cfg.window_rows))
    for j, f in enumerate(idx):
        a = window_start_row(f, cfg)
        b = a + cfg.window_rows
        lo, hi = max(a, 0), min(b, rows)
        if lo < hi:
            out[j, 0, :, lo - a : hi - a] = mel[lo:hi].T
    return out


def iter_mel_windows(
    mel: torch.Tensor, num_frames: int, batch_size: int, start: int = 0, cfg: AudioConfig = DEFAULT_AUDIO
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(first_frame, windows)`` batches covering frames ``[start, num_frames)``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for s in range(start, num_frames, batch_size):
        e = min(s + batch_size, num_frames)
        yield s, mel_windows(mel, s, e, cfg=cfg)
