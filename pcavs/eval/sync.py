"""Audio-visual synchronisation, the PC-AVS contrastive sync score: offset and confidence of a video.

PC-AVS trains its audio encoder (``A_sync``) and the visual speech-content head of its non-identity
encoder (``E.to_mouth``) with a contrastive loss, so both land in one space where matching audio and
mouth features have a high cosine similarity. For each shift ``k`` in ``[-K, K]`` (frames) we average
``cos(visual[t], audio[t + k])`` over the video; the **offset** is the best shift and the
**confidence** is the best score minus the median over shifts (SyncNet's "median - min" idea, on
similarities). Sign: a positive offset means the mouth at frame ``t`` matches the sound of frame
``t + k``, i.e. the sound comes ``k`` frames late (the picture leads the sound).

The same curve is measured with the trained sync expert (:mod:`pcavs.eval.syncexpert`); SyncNet's
LSE-C / LSE-D, the other measurement of lips following speech, is in :mod:`pcavs.eval.syncnet`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from pcavs.audio import mel_windows, melspectrogram
from pcavs.eval.common import MAX_SHIFT
from pcavs.eval.metrics import sync_offset_from_scores, sync_scores
from pcavs.eval.tracking import resize_square
from pcavs.media import images_to_tensor

__all__ = [
    "ContrastiveSync",
    "SlidingSync",
    "SyncResult",
    "audio_features",
    "contrastive_sync",
    "measure_sync",
    "sliding_sync",
]

if TYPE_CHECKING:
    from pcavs.eval.syncexpert import SyncExpert
    from pcavs.model import PCAVS

EncodeFn = Callable[[Tensor], Tensor]


@dataclass
class SyncResult:
    """Offset and confidence of one video, plus the score of every shift."""

    offset: int  # best shift k: visual[t] matches audio[t + k]; > 0 means the sound is late
    confidence: float  # best score minus the median score over shifts
    scores: np.ndarray  # (2K+1,), index i is shift i - K
    max_shift: int
    reliable: bool = True  # False: confidence below the expert's calibrated threshold, offset not to be used
    expert: str = ""  # which sync expert measured it
    threshold: float | None = None  # the expert's threshold on the confidence

    @property
    def shifts(self) -> np.ndarray:
        return np.arange(-self.max_shift, self.max_shift + 1)


def contrastive_sync(audio: np.ndarray, visual: np.ndarray, max_shift: int = MAX_SHIFT) -> SyncResult:
    """Offset/confidence from per-frame audio and visual features ``(T, D)`` of one space (cosine)."""
    scores = sync_scores(audio, visual, max_shift)
    offset, conf = sync_offset_from_scores(scores)
    return SyncResult(offset, conf, scores, max_shift)


def measure_sync(expert: ContrastiveSync | SyncExpert, wave: np.ndarray, visual: np.ndarray,
                 max_shift: int = MAX_SHIFT) -> tuple[SyncResult, np.ndarray, np.ndarray]:
    """Whole-video sync of ``visual`` (the expert's ``visual_features`` rows) against a 16 kHz wave.

    Returns the result (``reliable`` False when the confidence is below the expert's threshold) and
    the per-frame audio and video embeddings it came from (for :func:`sliding_sync`).
    """
    # any object with audio_features/visual_features works; embed, name and threshold are optional
    embed = getattr(expert, "embed", None)
    v = embed(visual) if embed is not None else np.asarray(visual, dtype=np.float64)
    a = expert.audio_features(wave, len(v))
    res = contrastive_sync(a, v, max_shift)
    res.expert, res.threshold = getattr(expert, "name", ""), getattr(expert, "threshold", None)
    res.reliable = res.threshold is None or res.confidence >= res.threshold
    return res, a, v


@dataclass
class SlidingSync:
    """Sync measured in a window sliding over the video (one value per window position)."""

    centres: np.ndarray  # (W,) frame index at the centre of each window
    offsets: np.ndarray  # (W,) best shift in the window
    confidences: np.ndarray  # (W,) best minus median score in the window
    best_scores: np.ndarray  # (W,) best mean cosine similarity in the window
    window: int


def _band(audio: np.ndarray, visual: np.ndarray, max_shift: int) -> np.ndarray:
    """``band[t, k + K] = cos(visual[t], audio[t + k])``; NaN where ``t + k`` is outside the audio."""
    a = np.asarray(audio, dtype=np.float64)
    v = np.asarray(visual, dtype=np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    tv, ta = v.shape[0], a.shape[0]
    band = np.full((tv, 2 * max_shift + 1), np.nan)
    for i, k in enumerate(range(-max_shift, max_shift + 1)):
        lo, hi = max(0, -k), min(tv, ta - k)
        if lo < hi:
            band[lo:hi, i] = np.einsum("td,td->t", v[lo:hi], a[lo + k : hi + k])
    return band


def sliding_sync(
    audio: np.ndarray, visual: np.ndarray, window: int = 25, max_shift: int = MAX_SHIFT
) -> SlidingSync:
    """Offset and confidence in every ``window``-frame stretch of the video (step 1 frame).

    Audio outside the window is used when a shift reaches it, so every window sees all shifts.
    A video shorter than ``window`` gives a single window covering it all.
    """
    band = _band(audio, visual, max_shift)
    t = band.shape[0]
    w = max(1, min(window, t))
    valid = np.isfinite(band)
    vals = np.where(valid, band, 0.0)
    csum = np.vstack([np.zeros((1, band.shape[1])), np.cumsum(vals, axis=0)])
    ccnt = np.vstack([np.zeros((1, band.shape[1])), np.cumsum(valid, axis=0)])
    starts = np.arange(0, t - w + 1)
    sums = csum[starts + w] - csum[starts]
    counts = ccnt[starts + w] - ccnt[starts]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), -np.inf)
    offsets = np.empty(starts.size, dtype=np.int64)
    confs = np.empty(starts.size)
    best = np.empty(starts.size)
    for j, row in enumerate(means):
        offsets[j], confs[j] = sync_offset_from_scores(row)
        best[j] = row[offsets[j] + max_shift]
    return SlidingSync(starts + (w - 1) / 2.0, offsets, confs, best, w)


def audio_features(
    encode: EncodeFn, wave: np.ndarray, num_frames: int, batch_size: int = 32, device: torch.device | None = None
) -> np.ndarray:
    """Per-frame speech features ``(num_frames, D)`` of a 16 kHz waveform.

    Frame ``i`` gets the official PC-AVS window (mel rows ``[4(i-2), 4(i-2)+20)``, the timing the
    model was trained with); ``encode`` maps ``(B, 1, 80, 20)`` windows to ``(B, D)``.
    """
    mel = melspectrogram(np.asarray(wave, dtype=np.float32))
    out = []
    with torch.inference_mode():
        for s in range(0, num_frames, batch_size):
            windows = mel_windows(mel, s, min(num_frames, s + batch_size))
            if device is not None:
                windows = windows.to(device)
            out.append(encode(windows).detach().float().cpu().numpy())
    if not out:
        return np.zeros((0, 0))
    return np.concatenate(out).astype(np.float64)


class ContrastiveSync:
    """PC-AVS audio and visual speech-content encoders, for the contrastive sync score.

    ``visual_features`` takes official aligned face crops (any square size, uint8 RGB) and resizes
    them to the model's input size.
    """

    def __init__(self, model: PCAVS, device: str | torch.device | None = None, batch_size: int = 32,
                 threshold: float | None = None) -> None:
        self.model = model.eval()
        official = model.cfg.name == "official"
        # official weights: PC-AVS's own sync stage (A_sync + E's mouth head), trained on real faces
        own = "official" if official else f"{model.cfg.name} model's"
        self.name = f"{own} A_sync + mouth embedding"
        self.threshold = threshold
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model.to(self.device)
        self.batch_size = batch_size
        self.image_size = int(model.cfg.image_size)

    def audio_features(self, wave: np.ndarray, num_frames: int) -> np.ndarray:
        """``(num_frames, D)`` speech content of the 16 kHz waveform, one row per video frame."""
        return audio_features(self.model.encode_audio, wave, num_frames, self.batch_size, self.device)

    def embed(self, visual: np.ndarray) -> np.ndarray:
        """Per-frame embeddings from :meth:`visual_features` rows: they already are."""
        return np.asarray(visual, dtype=np.float64)

    def visual_features(self, crops: np.ndarray) -> np.ndarray:
        """``(B, D)`` visual speech content of aligned face crops ``(B, S, S, 3)`` uint8."""
        if len(crops) == 0:
            return np.zeros((0, self.model.cfg.nonidentity.feature_dim))
        x = np.ascontiguousarray(crops)
        if x.shape[1:3] != (self.image_size, self.image_size):
            x = np.stack([resize_square(im, self.image_size) for im in x])
        t = images_to_tensor(x, self.device)
        with torch.inference_mode():
            feats = self.model.E.visual_content(self.model.E(t))
        return feats.detach().float().cpu().numpy().astype(np.float64)
