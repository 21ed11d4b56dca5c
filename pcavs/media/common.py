"""What every media module shares: the error, the tensor <-> image conversions, opening inputs."""

from __future__ import annotations

import os
from pathlib import Path

import av
import av.error
import numpy as np
import torch

from pcavs.errors import UserError

IMAGE_MAX_PIXELS = 100_000_000
_VIDEO_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


class MediaError(UserError, ValueError):
    """A media file could not be read or written; the message names the file and the fix."""


# --------------------------------------------------------------------------------------- images


def images_to_tensor(images: np.ndarray, device: str | torch.device | None = None) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [-1, 1]: the official ToTensor + Normalize(0.5, 0.5)."""
    arr = np.ascontiguousarray(images)
    if not arr.flags.writeable:  # PIL-backed crops are read-only; torch.from_numpy warns on those
        arr = arr.copy()
    return torch.from_numpy(arr).to(device).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def tensor_to_images(frames: torch.Tensor) -> np.ndarray:
    """Network output (B, 3, H, W) in [-1, 1] -> uint8 (B, H, W, 3), rounded."""
    x = frames.detach().clamp(-1.0, 1.0).add(1.0).mul(127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def require_file(path: str | os.PathLike[str], role: str = "", error: type[Exception] = MediaError) -> Path:
    """The path of an input that exists and is a file; ``role`` ("audio", ...) names it in the message."""
    p = Path(path)
    label = f"{role} {p}" if role else str(p)
    if not p.exists():
        raise error(f"{label}: file not found; check the path")
    if p.is_dir():
        raise error(f"{label}: is a folder, not a file; pass the file inside it")
    return p


def _open_input(path: str | os.PathLike[str]) -> tuple[Path, av.container.InputContainer]:
    p = require_file(path)
    try:
        container = av.open(str(p), mode="r")
    except av.error.FFmpegError as e:
        raise MediaError(
            f"{p}: not a readable media file ({e.strerror or e}); it may be truncated, still being "
            "written, or not audio/video at all; re-export it as .wav/.mp3/.mp4"
        ) from None
    try:
        if not container.streams.video and not container.streams.audio:
            raise MediaError(
                f"{p}: contains no audio or video stream; it is truncated or not a media file; "
                "re-export it as .wav/.mp3/.mp4"
            )
        _check_not_truncated(p, container)
    except BaseException:
        container.close()
        raise
    return p, container


def _check_not_truncated(p: Path, container: av.container.InputContainer) -> None:
    # MP4/MOV keep a sample index in the header; FFmpeg silently stops at EOF when the data it
    # points to is missing (a cut-short download), so compare the index with the file size.
    if "mp4" not in container.format.name and "mov" not in container.format.name:
        return
    size = p.stat().st_size
    needed = 0
    for stream in container.streams:
        try:
            entries = stream.index_entries
        except AttributeError:  # older PyAV: no index access, skip the check
            return
        # A cut-short file loses its tail, so the last entries of each stream suffice (and keep
        # this O(1) for hour-long videos).
        n = len(entries)
        for i in range(max(0, n - 16), n):
            e = entries[i]
            needed = max(needed, e.pos + e.size)
    if needed > size:
        raise MediaError(
            f"{p}: file is truncated: it is {size} bytes but its index refers to data up to byte "
            f"{needed}; the copy or download was cut short; get the complete file"
        )
