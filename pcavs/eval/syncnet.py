"""SyncNet (Chung & Zisserman 2016) and the LSE-C / LSE-D metrics of Wav2Lip and later papers.

The network ``S`` of ``joonson/syncnet_python`` is rebuilt here layer for layer, so the released
``syncnet_v2.model`` state_dict loads strictly (``netcnnaud``, ``netfcaud``, ``netcnnlip``,
``netfclip``). Its audio input is 13 MFCCs (python_speech_features defaults, 100 Hz) in windows of
20 rows; its lip input is 5 consecutive colour face crops of 224x224 in BGR order with raw 0-255
values (the official code reads JPEGs with OpenCV and never normalises). Distances between the
two 1024-d embeddings are averaged per shift over ``[-15, 15]`` with the official zero padding:
**LSE-D** is the minimum mean distance, **LSE-C** the median minus that minimum. (The project's own
sync measurement, the contrastive offset and confidence, is in :mod:`pcavs.eval.sync`.)

The face crop SyncNet sees follows ``run_pipeline.py``: a square-ish box around the detected face
(half size = half the larger box side; centre and size median-filtered over 13 frames), padded with grey 110
where it leaves the frame, rows ``[cy - s, cy + s (1 + 2 cs)]`` and columns ``[cx - s (1 + cs), cx + s
(1 + cs)]`` with ``cs = 0.4``, resized to 224x224. The official pipeline detects with S3FD; here the box
comes from the dlib 68 landmarks (their bounding box, made square and extended upwards to cover the
forehead as S3FD's boxes do), so absolute LSE values can differ slightly from a run of the official
scripts on the same video.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import scipy.fft
import scipy.signal
import torch
from torch import Tensor, nn

from pcavs.audio import DEFAULT_AUDIO
from pcavs.errors import UserError
from pcavs.eval.common import MAX_SHIFT

__all__ = [
    "SYNCNET_CROP_SCALE",
    "LSEResult",
    "SyncNet",
    "SyncNetError",
    "SyncNetScorer",
    "load_syncnet",
    "lse_from_features",
    "mfcc",
    "smoothed_box_params",
    "syncnet_boxes",
    "syncnet_crop",
    "syncnet_distances",
]

SYNCNET_CROP_SCALE = 0.4  # run_pipeline.py --crop_scale
SYNCNET_SIZE = 224
SYNCNET_FRAMES = 5  # frames per lip stack
SYNCNET_MFCC_ROWS = 20  # MFCC rows (10 ms each) per audio window: 200 ms
_SYNCNET_PAD_VALUE = 110  # run_pipeline.py pads frames with this grey before cropping
_MEDIAN_KERNEL = 13  # run_pipeline.py smooths box centre and size with this median filter


class SyncNetError(UserError, ValueError):
    """A SyncNet weights file that cannot be used; the message names the file and the fix."""


# ---------------------------------------------------------------------------- the network
def _conv_bn(conv: nn.Module, channels: int, bn: type[nn.Module], inplace: bool = True) -> list[nn.Module]:
    return [conv, bn(channels), nn.ReLU(inplace=inplace)]


def _fc_head(out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, out_dim))


class SyncNet(nn.Module):
    """SyncNet's ``S`` network; module indices match the official file (``netcnnaud.0.weight``, ...).

    ``forward_aud``: MFCC windows ``(B, 1, 13, 20)`` -> ``(B, 1024)``;
    ``forward_lip``: lip stacks ``(B, 3, 5, 224, 224)`` (BGR, 0-255) -> ``(B, 1024)``.
    """

    def __init__(self, embedding_dim: int = 1024) -> None:
        super().__init__()
        c2, b2 = nn.Conv2d, nn.BatchNorm2d
        self.netcnnaud = nn.Sequential(
            *_conv_bn(c2(1, 64, 3, padding=1), 64, b2),
            nn.MaxPool2d(1, 1),  # a no-op, kept so the indices match the file
            *_conv_bn(c2(64, 192, 3, padding=1), 192, b2),
            nn.MaxPool2d(3, stride=(1, 2)),
            *_conv_bn(c2(192, 384, 3, padding=1), 384, b2),
            *_conv_bn(c2(384, 256, 3, padding=1), 256, b2),
            *_conv_bn(c2(256, 256, 3, padding=1), 256, b2),
            nn.MaxPool2d(3, stride=2),
            *_conv_bn(c2(256, 512, (5, 4)), 512, b2, inplace=False),
        )
        self.netfcaud = _fc_head(embedding_dim)
        self.netfclip = _fc_head(embedding_dim)
        c3, b3 = nn.Conv3d, nn.BatchNorm3d
        self.netcnnlip = nn.Sequential(
            *_conv_bn(c3(3, 96, (5, 7, 7), stride=(1, 2, 2)), 96, b3),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)),
            *_conv_bn(c3(96, 256, (1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)), 256, b3),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            *_conv_bn(c3(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, b3),
            *_conv_bn(c3(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, b3),
            *_conv_bn(c3(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, b3),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)),
            *_conv_bn(c3(256, 512, (1, 6, 6)), 512, b3),
        )

    def forward_aud(self, x: Tensor) -> Tensor:
        return self.netfcaud(self.netcnnaud(x).flatten(1))

    def forward_lip(self, x: Tensor) -> Tensor:
        return self.netfclip(self.netcnnlip(x).flatten(1))

    def forward(self, mfcc_windows: Tensor, lip_stacks: Tensor) -> tuple[Tensor, Tensor]:
        return self.forward_aud(mfcc_windows), self.forward_lip(lip_stacks)


def load_syncnet(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> SyncNet:
    """Load ``syncnet_v2.model`` (a plain state_dict) strictly into :class:`SyncNet`, in eval mode.

    Files saved by PyTorch < 0.4.1 have no BatchNorm ``num_batches_tracked`` counters; those (unused
    in eval mode) may be absent. Every other key must be present with its shape, and nothing else.
    A ``module.`` or ``__S__.`` prefix (DataParallel / SyncNetInstance) is accepted.
    """
    p = Path(path)
    if not p.is_file():
        raise SyncNetError(
            f"{p}: SyncNet weights not found; download syncnet_v2.model from joonson/syncnet_python "
            "(its download_model.sh) and pass its path with --syncnet"
        )
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a torch file, or a pickled module
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]  # torch's text runs for lines
        raise SyncNetError(
            f"{p}: cannot be read as a PyTorch state_dict ({reason}); re-download syncnet_v2.model"
        ) from exc
    if not isinstance(state, Mapping):
        raise SyncNetError(f"{p}: expected a state_dict, found {type(state).__name__}")
    state = dict(state)
    for prefix in ("module.", "__S__."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    net = SyncNet()
    own = net.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = [f"{p}: not a SyncNet (syncnet_v2.model) state_dict"]
        for title, items in (("missing", missing), ("unexpected", unexpected), ("wrong shapes", shapes)):
            if items:
                parts.append(f"{title} ({len(items)}): {', '.join(items[:8])}{' ...' if len(items) > 8 else ''}")
        raise SyncNetError("; ".join(parts) + "; use the official syncnet_v2.model")
    for k, v in own.items():
        if k not in state:  # only num_batches_tracked can get here
            state[k] = torch.zeros_like(v)
    net.load_state_dict(state, strict=True)
    return net.to(device).eval()


# ---------------------------------------------------------------------------- MFCC front-end
# python_speech_features' HTK mel scale, a front-end of its own: not pcavs.audio's Slaney mel (the model's).
def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def _triangular_filterbank(nfilt: int, nfft: int, sr: int, low: float, high: float) -> np.ndarray:
    # Filter edges snapped to FFT bins with floor((nfft + 1) f / sr): python_speech_features' rule.
    edges = np.floor((nfft + 1) * _mel_to_hz(np.linspace(_hz_to_mel(low), _hz_to_mel(high), nfilt + 2)) / sr)
    bins = np.arange(nfft // 2 + 1, dtype=np.float64)
    fb = np.zeros((nfilt, nfft // 2 + 1))
    for j in range(nfilt):
        a, b, c = edges[j], edges[j + 1], edges[j + 2]
        rise = (bins >= a) & (bins < b)
        fall = (bins >= b) & (bins < c)
        fb[j, rise] = (bins[rise] - a) / (b - a)
        fb[j, fall] = (c - bins[fall]) / (c - b)
    return fb


def mfcc(
    signal: np.ndarray,
    sample_rate: int = 16000,
    winlen: float = 0.025,
    winstep: float = 0.01,
    numcep: int = 13,
    nfilt: int = 26,
    nfft: int = 512,
    preemph: float = 0.97,
    ceplifter: int = 22,
) -> np.ndarray:
    """MFCCs ``(frames, numcep)`` exactly as ``python_speech_features.mfcc`` (v0.6) with its defaults.

    Pre-emphasis, rectangular 25 ms frames every 10 ms (the last one zero-padded), power spectrum
    ``|FFT_512|^2 / 512``, 26 triangular mel filters over 0..sr/2, log, orthonormal DCT-II, liftering
    with L = 22, and coefficient 0 replaced by the log frame energy. SyncNet feeds it int16-scale
    samples (``scipy.io.wavfile`` output), so pass ``wave * 32768`` for float audio; the scale moves
    coefficient 0 only.
    """
    x = np.asarray(signal, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("mfcc needs at least one sample")
    x = np.append(x[0], x[1:] - preemph * x[:-1])
    flen = int(np.floor(winlen * sample_rate + 0.5))  # round half up, as the reference does
    step = int(np.floor(winstep * sample_rate + 0.5))
    n = 1 if x.size <= flen else 1 + int(np.ceil((x.size - flen) / step))
    padded = np.zeros((n - 1) * step + flen)
    padded[: x.size] = x
    frames = np.lib.stride_tricks.sliding_window_view(padded, flen)[::step][:n]
    pspec = np.abs(np.fft.rfft(frames, nfft)) ** 2 / nfft
    eps = np.finfo(np.float64).eps
    energy = pspec.sum(axis=1)
    energy = np.where(energy == 0, eps, energy)
    feat = pspec @ _triangular_filterbank(nfilt, nfft, sample_rate, 0.0, sample_rate / 2).T
    feat = np.where(feat == 0, eps, feat)
    cep = scipy.fft.dct(np.log(feat), type=2, axis=1, norm="ortho")[:, :numcep]
    if ceplifter > 0:
        cep = cep * (1.0 + (ceplifter / 2.0) * np.sin(np.pi * np.arange(numcep) / ceplifter))
    cep[:, 0] = np.log(energy)
    return cep


def _to_int16_scale(wave: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] -> the int16 values ffmpeg's pcm_s16le would store (as float64)."""
    x = np.asarray(wave, dtype=np.float64)
    return np.clip(np.rint(x * 32768.0), -32768, 32767)


# ---------------------------------------------------------------------------- face crop
def syncnet_boxes(landmarks: np.ndarray) -> np.ndarray:
    """Per-frame face boxes ``(T, 4)`` as (x0, y0, x1, y1) from ``(T, 68, 2)`` landmarks (NaN kept).

    The 68 points stop at the eyebrows, while S3FD's boxes (which the official crop was tuned on)
    reach into the forehead and past the cheeks: the box is a square of 1.2 x the landmarks' larger
    extent, centred on them horizontally and resting on the chin, which is where a face detector's
    box usually lies.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    x0, y0 = lm[..., 0].min(axis=-1), lm[..., 1].min(axis=-1)
    x1, y1 = lm[..., 0].max(axis=-1), lm[..., 1].max(axis=-1)
    side = np.maximum(x1 - x0, y1 - y0)
    cx = (x0 + x1) / 2
    top = y1 - side * 1.2
    return np.stack([cx - side * 0.6, top, cx + side * 0.6, y1], axis=-1)


def smoothed_box_params(boxes: np.ndarray) -> np.ndarray:
    """``(T, 3)`` = (half size, centre x, centre y), each median-filtered over 13 frames (official)."""
    b = np.asarray(boxes, dtype=np.float64)
    s = np.maximum(b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]) / 2
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    out = np.stack([s, cx, cy], axis=1)
    ok = np.isfinite(out).all(axis=1)
    if ok.sum() >= 1:
        # scipy's medfilt zero-pads the ends, exactly as the official call does
        k = min(_MEDIAN_KERNEL, ok.sum() if ok.sum() % 2 else ok.sum() - 1)
        for c in range(3):
            out[ok, c] = scipy.signal.medfilt(out[ok, c], kernel_size=max(k, 1))
    return out


def syncnet_crop(frame: np.ndarray, half_size: float, cx: float, cy: float,
                 crop_scale: float = SYNCNET_CROP_SCALE) -> np.ndarray:
    """The official SyncNet face crop (224x224 RGB uint8) of one frame; see the module docstring."""
    bs = float(half_size)
    bsi = int(bs * (1 + 2 * crop_scale))
    padded = np.pad(frame, ((bsi, bsi), (bsi, bsi), (0, 0)), mode="constant", constant_values=_SYNCNET_PAD_VALUE)
    my, mx = cy + bsi, cx + bsi
    face = padded[int(my - bs) : int(my + bs * (1 + 2 * crop_scale)),
                  int(mx - bs * (1 + crop_scale)) : int(mx + bs * (1 + crop_scale))]
    if face.size == 0:
        return np.full((SYNCNET_SIZE, SYNCNET_SIZE, 3), _SYNCNET_PAD_VALUE, np.uint8)
    # cv2.resize's default (bilinear), as the official script uses
    return cv2.resize(np.ascontiguousarray(face), (SYNCNET_SIZE, SYNCNET_SIZE))


# ---------------------------------------------------------------------------- the LSE metrics
def syncnet_distances(video_feats: np.ndarray, audio_feats: np.ndarray, vshift: int = MAX_SHIFT) -> np.ndarray:
    """``(N, 2v+1)`` distances of video feature ``i`` to audio features ``i - v .. i + v``.

    Reproduces ``calc_pdist``: the audio features are zero-padded by ``v`` rows on both sides and the
    padded rows *are* used (distance to the zero vector), and ``pairwise_distance`` adds 1e-6 to the
    difference before the norm.
    """
    v = np.asarray(video_feats, dtype=np.float64)
    a = np.asarray(audio_feats, dtype=np.float64)
    ap = np.vstack([np.zeros((vshift, a.shape[1])), a, np.zeros((vshift, a.shape[1]))])
    n = v.shape[0]
    out = np.empty((n, 2 * vshift + 1))
    for j in range(2 * vshift + 1):
        seg = ap[j : j + n]
        if seg.shape[0] < n:  # more video than audio features: the official pad only covers v rows
            seg = np.vstack([seg, np.zeros((n - seg.shape[0], a.shape[1]))])
        out[:, j] = np.linalg.norm(v - seg + 1e-6, axis=1)
    return out


@dataclass
class LSEResult:
    """SyncNet's verdict on one video."""

    lse_d: float  # minimum over shifts of the mean distance (lower = better sync)
    lse_c: float  # median minus minimum of the mean distances (higher = more confident sync)
    av_offset: int  # official sign: vshift - argmin (positive: the sound comes early)
    mean_dists: np.ndarray  # (2v+1,)
    frame_conf: np.ndarray  # per-window confidence at the best shift, median-filtered over 9 (official)


def lse_from_features(video_feats: np.ndarray, audio_feats: np.ndarray, vshift: int = MAX_SHIFT) -> LSEResult:
    """LSE-D, LSE-C and the AV offset exactly as ``SyncNetInstance.evaluate`` computes them."""
    if len(video_feats) == 0:
        raise ValueError("no SyncNet windows: the video needs at least 6 frames")
    d = syncnet_distances(video_feats, audio_feats, vshift)
    mdist = d.mean(axis=0)
    j = int(np.argmin(mdist))
    med = float(np.median(mdist))  # 2v+1 values: the middle one, as torch.median picks
    fconf = med - d[:, j]
    k = min(9, len(fconf) if len(fconf) % 2 else len(fconf) - 1)
    fconf = scipy.signal.medfilt(fconf, kernel_size=max(k, 1))
    return LSEResult(float(mdist[j]), med - float(mdist[j]), vshift - j, mdist, fconf)


class SyncNetScorer:
    """Runs SyncNet on a video: MFCC windows of its audio and 5-frame stacks of its face crops.

    Lip features are produced incrementally: :meth:`push` face crops (from :func:`syncnet_crop`) in
    frame order, then :meth:`result` with the waveform. Only the last 4 crops are kept between calls.
    """

    def __init__(self, net: SyncNet, device: str | torch.device = "cpu", batch_size: int = 8) -> None:
        self.net = net.eval()
        self.device = torch.device(device)
        self.net.to(self.device)
        self.batch_size = batch_size
        self._recent: deque[np.ndarray] = deque(maxlen=SYNCNET_FRAMES)
        self._pending: list[np.ndarray] = []
        self._feats: list[np.ndarray] = []
        self.frames_seen = 0

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu") -> SyncNetScorer:
        return cls(load_syncnet(path, device), device)

    def reset(self) -> None:
        self._recent.clear()
        self._pending.clear()
        self._feats.clear()
        self.frames_seen = 0

    def push(self, crop: np.ndarray) -> None:
        """Add the next frame's 224x224 RGB face crop."""
        self._recent.append(np.ascontiguousarray(crop[:, :, ::-1]))  # BGR, as cv2.imread gives
        self.frames_seen += 1
        if len(self._recent) == SYNCNET_FRAMES:
            self._pending.append(np.stack(self._recent))  # (5, H, W, 3)
            if len(self._pending) >= self.batch_size:
                self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        x = torch.from_numpy(np.stack(self._pending)).float()  # (B, 5, H, W, 3), raw 0-255
        x = x.permute(0, 4, 1, 2, 3).to(self.device)  # (B, 3, 5, H, W)
        with torch.inference_mode():
            self._feats.append(self.net.forward_lip(x).float().cpu().numpy())
        self._pending.clear()

    def result(self, wave: np.ndarray, sample_rate: int = DEFAULT_AUDIO.sample_rate,
               vshift: int = MAX_SHIFT) -> LSEResult:
        """LSE for the frames pushed so far and their audio (16 kHz float mono, starting at frame 0)."""
        self._flush()
        video = np.concatenate(self._feats) if self._feats else np.zeros((0, 1024))
        # official: min_length = min(frames, floor(samples / 640)); windows i in [0, min_length - 5)
        spf = sample_rate // 25
        n = min(self.frames_seen, len(wave) // spf) - SYNCNET_FRAMES
        if n < 1:
            raise ValueError(
                f"SyncNet needs at least {SYNCNET_FRAMES + 1} frames with audio, got {self.frames_seen} frames "
                f"and {len(wave) / sample_rate:.2f} s of audio"
            )
        cep = mfcc(_to_int16_scale(wave), sample_rate).T  # (13, rows)
        windows = np.stack([cep[:, 4 * i : 4 * i + SYNCNET_MFCC_ROWS] for i in range(n)])[:, None]
        feats = []
        with torch.inference_mode():
            for s in range(0, n, 64):
                x = torch.from_numpy(windows[s : s + 64]).float().to(self.device)
                feats.append(self.net.forward_aud(x).float().cpu().numpy())
        return lse_from_features(video[:n], np.concatenate(feats), vshift)
