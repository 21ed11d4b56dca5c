"""Which torch device a command runs on: the one place ``--device`` / ``device=`` is interpreted."""

from __future__ import annotations

import torch

from pcavs.errors import UserError


class DeviceError(UserError, ValueError):
    """An unknown or unusable device was asked for."""


def resolve_device(device: str | torch.device | None, local_rank: int | None = None) -> torch.device:
    """``auto`` (or None) -> CUDA when available, else CPU. ``local_rank`` (torchrun) picks this process's
    GPU when the device names none. An unknown device, or CUDA where none is usable, is a
    :class:`DeviceError` that says what to use instead."""
    if device is None or str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"unknown device {device!r}; use cpu, cuda or auto") from exc
    if dev.type not in ("cpu", "cuda"):
        raise DeviceError(f"device {device!r} is not supported; use cpu, cuda or auto")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("device cuda requested but no CUDA GPU is usable here; use --device cpu (or auto)")
        if dev.index is None and local_rank is not None:
            dev = torch.device("cuda", local_rank)
    return dev


def set_cpu_threads(threads: int) -> None:
    """Use ``threads`` CPU threads for torch *and* numpy's BLAS in this process (0: leave the defaults).

    Both pools matter: the stream's mel (numpy ``@``) ran on OpenBLAS's own threads, which spin after each
    call and took the core from torch. A live child with torch at 1 thread but OpenBLAS at its default 2
    made 54 of 250 frames in 10 s on 2 cores; with OpenBLAS at 1 too, 248."""
    if threads < 0:
        raise ValueError(f"threads must be 0 or more, got {threads}")
    if threads:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(threads)
        threadpool_limits(limits=threads, user_api="blas")  # stays in force: the limiter is not a context here


__all__ = ["DeviceError", "resolve_device", "set_cpu_threads"]
