"""Resumable training state, kept apart from the exported inference weights.

``state.pt`` holds the networks (including D), optimisers, RNG states, the step and the data
position; it is written atomically so a kill never leaves a half-written file, and loaded with
``weights_only=True``. Exported weights live in ``weights/`` (safetensors) and ``official/``.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pcavs.fileio import atomic_path

STATE_FILE = "state.pt"


@dataclass
class Position:
    """Where training stands: the step counter and the data position (epoch, batches consumed)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def rng_state(cuda_device: torch.device | None = None) -> dict[str, Any]:
    """This process's RNG streams. ``cuda_device``: only that GPU's stream (a torchrun rank owns one GPU;
    the other GPUs' streams seen from this process never move)."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
    }  # fmt: skip
    if cuda_device is not None and cuda_device.type == "cuda":
        state["cuda_device"] = torch.cuda.get_rng_state(cuda_device)
    elif torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], cuda_device: torch.device | None = None) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "cuda_device" in state and cuda_device is not None and cuda_device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_device"], cuda_device)


def save_state(
    folder: Path,
    model: torch.nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    position: Position,
    config: dict[str, Any],
    rank_rngs: list[dict[str, Any]] | None = None,
) -> Path:
    """Write the state atomically. ``rank_rngs``: every torchrun rank's RNG streams, in rank order
    (gathered by the caller), so that each rank resumes its own streams."""
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": model.state_dict(),
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
        "position": {"step": position.step, "epoch": position.epoch, "batch_in_epoch": position.batch_in_epoch,
                     "extra": position.extra},
        "rng": rng_state(),
        "config": config,
    }  # fmt: skip
    if rank_rngs is not None:
        payload["rank_rngs"] = rank_rngs
    path = folder / STATE_FILE
    for stale in folder.glob(f".{STATE_FILE}.*.tmp"):  # left by a run killed while writing
        stale.unlink(missing_ok=True)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
        # Test hook (tests/test_resume.py): hold the written temporary file so that a kill lands inside
        # the checkpoint write; the previous state must survive it.
        pause = float(os.environ.get("PCAVS_CHECKPOINT_PAUSE_S", "0") or 0)
        if pause > 0:
            import time

            time.sleep(pause)
    return path


def load_state(
    folder: Path,
    model: torch.nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    map_location: Any = "cpu",
    rank: int = 0,
    world_size: int = 1,
) -> tuple[Position, dict[str, Any]] | None:
    """Restore a run in place; returns its position and saved config, or None when there is no state yet.

    Under torchrun each rank takes back its own RNG streams when the state was saved by as many ranks;
    otherwise (another world size) every rank takes the saved main process's, as a fresh start would.
    """
    path = folder / STATE_FILE
    if not path.exists():
        return None
    payload = torch.load(path, map_location=map_location, weights_only=True)
    model.load_state_dict(payload["model"], strict=True)
    for name, opt in optimizers.items():
        opt.load_state_dict(payload["optimizers"][name])
    ranks = payload.get("rank_rngs")
    device = torch.device(map_location) if isinstance(map_location, (str, torch.device)) else None
    if ranks is not None and len(ranks) == world_size:
        set_rng_state(ranks[rank], cuda_device=device)
    else:
        set_rng_state(payload["rng"])
    p = payload["position"]
    pos = Position(step=p["step"], epoch=p["epoch"], batch_in_epoch=p["batch_in_epoch"], extra=p.get("extra", {}))
    return pos, payload.get("config", {})
