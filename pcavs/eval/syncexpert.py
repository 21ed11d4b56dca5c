"""A small SyncNet-style sync expert trained on SynthTalk: the network, its files and its inference.

The built-in (SynthTalk) PC-AVS model's own audio and mouth encoders do not measure sync: they were
trained to drive a generator, and on clips rendered with other seeds their offset curve peaks at
random shifts. This expert is trained for sync alone, as SyncNet is trained apart from Wav2Lip:

* **video**: 5 consecutive mouth crops (frames ``t-2 .. t+2``, gray, 32x48) cut from a fixed box of
  the aligned face crop ``evaluate`` makes;
* **audio**: the project's mel window of frame ``t`` (:func:`pcavs.audio.mel_windows`, rows
  ``[4(t-2), 4(t-2)+20)``: the same 200 ms the 5 frames span);
* both map to 64-d unit vectors; frame ``t``'s score at shift ``k`` is ``cos(video[t], audio[t+k])``.

The per-shift mean of the cosine over a video is the offset curve of
:func:`pcavs.eval.sync.contrastive_sync`; the confidence is its peak minus its median, and a curve
whose confidence is below the expert's calibrated threshold (stored in its ``config.json``) gives no
offset: "unreliable". Training and calibration (``pcavs train-sync``) are in
:mod:`pcavs.eval.syncexpert_train`.

Offset sign (the whole project's): ``+k`` means the mouth at frame ``t`` matches the sound at frame
``t + k``, i.e. the sound comes ``k`` frames late (delay the audio by 3 frames and the offset is +3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.nn import functional as F

from pcavs.checkpoint import CONFIG_FILE, WEIGHTS_FILE, CheckpointError
from pcavs.eval.sync import audio_features
from pcavs.fileio import atomic_path, atomic_write_text

__all__ = [
    "BUILTIN_SYNC_EXPERT",
    "MOUTH_BOX",
    "MOUTH_H",
    "MOUTH_W",
    "STACK",
    "WIDE_BOX",
    "SyncExpert",
    "SyncExpertNet",
    "central",
    "load_sync_expert",
    "mouth_crops",
    "mouth_stacks",
    "save_sync_expert",
]

FORMAT = "pcavs-sync-expert"
FORMAT_VERSION = 1
#: The shipped expert (trained on SynthTalk seeds 7100+, see README "Lip sync").
BUILTIN_SYNC_EXPERT = Path(__file__).resolve().parent.parent / "assets" / "weights" / "synthtalk-sync"
#: Mouth box (x0, y0, x1, y1) in the 224 px official aligned crop; the mouth corners of SynthTalk faces
#: span x 88..136, y 126..159 there (pinned by the alignment), so the box keeps a margin on every side.
MOUTH_BOX = (64, 104, 160, 168)
MOUTH_H, MOUTH_W = 32, 48
#: Training clips keep twice the mouth box's width and height (same centre, same 0.5 px/px scale, so
#: its central 32x48 is the mouth crop): room to zoom out, shift and turn the box as a face tracker's
#: crop does on faces its landmarks fit badly (see :class:`TrackerJitter`).
WIDE_BOX = (16, 72, 208, 200)
STACK = 5  # frames per video window: t-2 .. t+2, the span of the 20-row mel window
_HALF = STACK // 2


def mouth_crops(crops: np.ndarray, wide: bool = False) -> np.ndarray:
    """``(B, 32, 48)`` uint8 gray mouth images from aligned face crops ``(B, S, S, 3)`` (any S);
    ``wide``: ``(B, 64, 96)`` images of :data:`WIDE_BOX` (the training cache's)."""
    s = crops.shape[1] / 224.0
    box = tuple(int(round(v * s)) for v in (WIDE_BOX if wide else MOUTH_BOX))
    h, w = (2 * MOUTH_H, 2 * MOUTH_W) if wide else (MOUTH_H, MOUTH_W)
    out = np.empty((len(crops), h, w), np.uint8)
    for i, c in enumerate(crops):
        im = Image.fromarray(np.ascontiguousarray(c)).convert("L").crop(box)
        out[i] = np.asarray(im.resize((w, h), Image.BOX))
    return out


def central(wide: np.ndarray) -> np.ndarray:
    """The mouth crops ``(T, 32, 48)`` inside wide crops ``(T, 64, 96)`` (the central half)."""
    return wide[:, MOUTH_H // 2 : MOUTH_H // 2 + MOUTH_H, MOUTH_W // 2 : MOUTH_W // 2 + MOUTH_W]


def mouth_stacks(mouths: Tensor, frames: Tensor) -> Tensor:
    """``(N, 5, H, W)`` stacks of frames ``f-2..f+2`` (indices clamped at the ends) from ``(T, H, W)``."""
    t = mouths.shape[0]
    idx = (frames[:, None] + torch.arange(-_HALF, _HALF + 1, device=frames.device)[None]).clamp(0, t - 1)
    return mouths[idx]


def _conv(cin: int, cout: int, stride: int | tuple[int, int] = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SyncExpertNet(nn.Module):
    """Video ``(B, 5, 32, 48)`` and audio ``(B, 1, 80, 20)`` encoders into one unit-norm space."""

    def __init__(self, width: int = 16, dim: int = 64) -> None:
        super().__init__()
        w = width
        self.video = nn.Sequential(*_conv(STACK, w), *_conv(w, 2 * w, 2), *_conv(2 * w, 4 * w, 2),
                                   *_conv(4 * w, 4 * w, 2), nn.AdaptiveAvgPool2d((4, 6)), nn.Flatten(),
                                   nn.Linear(4 * w * 24, dim))
        self.audio = nn.Sequential(*_conv(1, w), *_conv(w, 2 * w, 2), *_conv(2 * w, 4 * w, 2),
                                   *_conv(4 * w, 4 * w, (2, 1)), nn.AdaptiveAvgPool2d((5, 5)), nn.Flatten(),
                                   nn.Linear(4 * w * 25, dim))

    def embed_video(self, stacks: Tensor) -> Tensor:
        """uint8-range stacks (float or uint8) -> unit vectors; each stack is centred on its own mean
        level so lighting and skin tone do not matter, only the mouth's shape and motion."""
        x = stacks.float() / 255.0
        x = (x - x.mean(dim=(1, 2, 3), keepdim=True)) / 0.2
        return F.normalize(self.video(x), dim=1)

    def embed_audio(self, windows: Tensor) -> Tensor:
        return F.normalize(self.audio(windows.float()), dim=1)


@dataclass
class SyncExpert:
    """A loaded expert with the interface :func:`pcavs.eval.evaluate.scan_video` uses for sync.

    ``visual_features`` returns per-frame mouth images (flattened), not embeddings: the video encoder
    needs 5 neighbouring frames, so :meth:`embed` turns the whole sequence into per-frame embeddings.
    """

    net: SyncExpertNet
    threshold: float  # calibrated confidence below which the offset is "unreliable"
    name: str = "synthtalk-sync"
    device: torch.device = torch.device("cpu")
    batch_size: int = 64

    def visual_features(self, crops: np.ndarray) -> np.ndarray:
        return mouth_crops(crops).reshape(len(crops), -1).astype(np.float64)

    def embed(self, visual: np.ndarray) -> np.ndarray:
        """``(T, 64)`` per-frame video embeddings from :meth:`visual_features` rows ``(T, 32*48)``."""
        mouths = torch.from_numpy(np.asarray(visual, np.float32).reshape(-1, MOUTH_H, MOUTH_W)).to(self.device)
        out = []
        with torch.inference_mode():
            for s in range(0, mouths.shape[0], self.batch_size):
                f = torch.arange(s, min(s + self.batch_size, mouths.shape[0]), device=self.device)
                out.append(self.net.embed_video(mouth_stacks(mouths, f)).cpu().numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, 64))

    def audio_features(self, wave: np.ndarray, num_frames: int) -> np.ndarray:
        """``(num_frames, 64)`` audio embeddings, frame ``t`` from the project's mel window of frame ``t``."""
        feats = audio_features(self.net.embed_audio, wave, num_frames, self.batch_size, self.device)
        return feats if len(feats) else np.zeros((0, 64))


def save_sync_expert(net: SyncExpertNet, folder: str | Path, meta: dict[str, Any]) -> Path:
    """``model.safetensors`` + ``config.json`` (format ``pcavs-sync-expert``), written atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    cfg = {"format": FORMAT, "version": FORMAT_VERSION, **meta}
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT})
    atomic_write_text(folder / CONFIG_FILE, json.dumps(cfg, indent=2) + "\n")
    return folder


def load_sync_expert(folder: str | Path = BUILTIN_SYNC_EXPERT, device: str | torch.device = "cpu") -> SyncExpert:
    """Load a sync expert folder strictly; errors name the file and what to do."""
    folder = Path(folder)
    path = folder / CONFIG_FILE
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path}: missing; a sync expert folder holds config.json and {WEIGHTS_FILE} "
                              "(train one with pcavs train-sync)") from exc
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from exc
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a sync expert config (format={meta.get('format')!r})")
    net = SyncExpertNet(int(meta.get("width", 16)), int(meta.get("dim", 64)))
    try:
        state = load_file(str(folder / WEIGHTS_FILE))
    except Exception as exc:
        raise CheckpointError(f"{folder / WEIGHTS_FILE}: cannot be read as safetensors ({exc}); "
                              "retrain with pcavs train-sync") from exc
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{folder / WEIGHTS_FILE}: does not match config.json ({str(exc)[:200]})") from exc
    dev = torch.device(device)
    return SyncExpert(net.to(dev).eval(), float(meta["threshold"]), str(meta.get("name", folder.name)), dev)

