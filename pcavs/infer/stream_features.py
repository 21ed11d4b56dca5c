"""Live mel features: the speech windows of a growing waveform, computed as soon as they are complete.

The rows come from the same chunked front end as offline generation (:func:`pcavs.infer.sources.mel_rows`),
so a chunk boundary never changes a row; only the samples and rows the next windows need are kept.
"""

from __future__ import annotations

import math
from fractions import Fraction

import av
import numpy as np
import torch

from pcavs.audio import DEFAULT_AUDIO, AudioConfig, num_stft_frames, num_video_frames

from .sources import InputError, feature_shift, mel_rows, speech_windows, window_last_row, window_start_rows

__all__ = ["LiveFeatures", "Resampler", "SR"]

SR = DEFAULT_AUDIO.sample_rate


class Resampler:
    """Any rate -> 16 kHz mono float32, statefully (libswresample through PyAV), chunk by chunk."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._rs = av.AudioResampler(format="flt", layout="mono", rate=SR)
        self._pts = 0

    def __call__(self, x: np.ndarray | None) -> np.ndarray:
        if x is None:
            frames = self._rs.resample(None)
        else:
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[None], dtype=np.float32), format="flt",
                                            layout="mono")
            af.sample_rate = self.rate
            af.pts = self._pts
            af.time_base = Fraction(1, self.rate)
            self._pts += x.size
            frames = self._rs.resample(af)
        parts = [f.to_ndarray().reshape(-1) for f in frames]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


class LiveFeatures:
    """The speech windows of a growing 16 kHz waveform, computed as soon as they are complete.

    Feature row ``k`` (as :func:`pcavs.infer.sources.speech_features` numbers them) needs samples up to
    ``hop * (k + drop + 1) - lead``; a frame is ready once its window's last row is. ``gain`` fixes the
    RMS gain; ``None`` tracks the RMS over about the last ``gain_window_s`` seconds.
    """

    def __init__(self, fps: int = 25, align_audio: bool = False, gain: float | None = None,
                 gain_window_s: float = 10.0, cfg: AudioConfig = DEFAULT_AUDIO) -> None:
        if gain is not None and not (math.isfinite(gain) and gain >= 0):
            raise InputError(f"gain must be a finite number >= 0 or None (running RMS), got {gain!r}")
        self.fps, self.align_audio, self.cfg = fps, align_audio, cfg
        self.lead, self.drop = feature_shift(align_audio, cfg)
        self.gain = gain
        self._decay = 0.5 ** (1.0 / max(gain_window_s * cfg.sample_rate, 1.0))  # per sample
        self._sumsq = 0.0
        self._weight = 0.0
        self.samples = 0  # pushed so far
        self.finished = False
        self._x = np.zeros(0, np.float32)
        self._x0 = 0  # sample index of self._x[0]
        self._mel = torch.zeros((0, cfg.n_mels))
        self._row0 = 0  # feature row of self._mel[0]
        self._ready = 0  # frames known to be ready

    @property
    def current_gain(self) -> float:
        """The gain the next mel rows are computed with."""
        if self.gain is not None:
            return self.gain
        if self._weight <= 0:
            return 0.0
        rms = math.sqrt(self._sumsq / self._weight)
        return self.cfg.rms / rms if rms >= 1e-12 else 0.0

    def push(self, x: np.ndarray) -> None:
        if self.finished:
            raise RuntimeError("audio pushed after finish()")
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        if x.size == 0:
            return
        if not np.all(np.isfinite(x)):
            raise InputError("audio chunk contains NaN or infinite samples")
        if self.gain is None:  # exponentially weighted mean square; each chunk decays the past
            d = self._decay ** x.size
            xd = x.astype(np.float64)
            self._sumsq = self._sumsq * d + float(np.dot(xd, xd))
            self._weight = self._weight * d + x.size
        self._x = np.concatenate([self._x, x])
        self.samples += x.size

    def finish(self) -> None:
        self.finished = True

    @property
    def total_frames(self) -> int | None:
        """Frames of the whole stream, once it is finished."""
        return num_video_frames(self.samples, self.fps, self.cfg.sample_rate) if self.finished else None

    def _rows_available(self) -> int:
        """Feature rows that can be computed now (all of them once finished)."""
        if self.finished:
            return max(num_stft_frames(self.lead + self.samples, self.cfg) - self.drop, 0)
        return max((self.lead + self.samples) // self.cfg.hop - self.drop, 0)

    def ready_frames(self) -> int:
        """Frames ``0 .. n-1`` whose windows are complete."""
        if self.finished:
            self._ready = self.total_frames or 0
            return self._ready
        rows = self._rows_available()
        while window_last_row(self._ready, self.fps, self.cfg) < rows:
            self._ready += 1
        return self._ready

    def windows(self, start: int, stop: int) -> torch.Tensor:
        """Model inputs (n, 1, n_mels, window_rows) of frames ``start .. stop-1`` (all ready)."""
        if stop > self.ready_frames():
            raise ValueError(f"frames up to {stop} asked for, only {self._ready} are ready")
        need = min(window_last_row(stop - 1, self.fps, self.cfg) + 1, self._rows_available())
        have = self._row0 + self._mel.shape[0]
        if need > have:
            rows = mel_rows(self._x, self._x0 + self.lead, have + self.drop, need + self.drop, self.current_gain,
                            self.cfg)
            self._mel = torch.cat([self._mel, rows])
        out = speech_windows(self._mel, range(start, stop), self.fps, self.cfg, first_row=self._row0)
        self._discard_before(stop)
        return out

    def _discard_before(self, frame: int) -> None:
        # rows before the next frame's window, and samples before the next row's STFT frame, are done
        first = max(window_start_rows([frame], self.fps, self.cfg)[0], 0)
        if first > self._row0:
            cut = min(first - self._row0, self._mel.shape[0])
            self._mel, self._row0 = self._mel[cut:].clone(), self._row0 + cut
        next_row = self._row0 + self._mel.shape[0]
        keep = self.cfg.hop * (next_row + self.drop) - (self.cfg.n_fft - self.cfg.hop) - self.lead
        if keep > self._x0:
            cut = min(keep - self._x0, self._x.size)
            self._x, self._x0 = self._x[cut:].copy(), self._x0 + cut

    @property
    def buffered(self) -> tuple[int, int]:
        """(samples, mel rows) held: bounded whatever the duration."""
        return self._x.size, self._mel.shape[0]
