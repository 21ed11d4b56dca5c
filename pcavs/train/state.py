"""Resumable training state, kept apart from the exported inference weights.

``state.pt`` holds the networks (including D), optimisers, RNG states, the step and the data
position; it is written atomically so a kill never leaves a half-written file, and loaded with
``weights_only=True``. Exported weights live in ``weights/`` (safetensors) and ``official/``.
"""

from __future__ import annotations

import os
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATE_FILE = "state.pt"


@dataclass
class Position:
    """Where training stands: the step counter and the data position (epoch, batches consumed)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
    }  # fmt: skip
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(
    folder: Path,
    model: torch.nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    position: Position,
    config: dict[str, Any],
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": model.state_dict(),
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
        "position": {"step": position.step, "epoch": position.epoch, "batch_in_epoch": position.batch_in_epoch,
                     "extra": position.extra},
        "rng": rng_state(),
        "config": config,
    }  # fmt: skip
    path = folder / STATE_FILE
    for stale in folder.glob(f".{STATE_FILE}.*.tmp"):  # left by a run killed while writing
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{STATE_FILE}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        # Test hook (tests/test_resume.py): hold the written temporary file so that a kill lands inside
        # the checkpoint write; the previous state must survive it.
        pause = float(os.environ.get("PCAVS_CHECKPOINT_PAUSE_S", "0") or 0)
        if pause > 0:
            import time

            time.sleep(pause)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_state(
    folder: Path, model: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer], map_location: Any = "cpu"
) -> tuple[Position, dict[str, Any]] | None:
    """Restore a run in place; returns its position and saved config, or None when there is no state yet."""
    path = folder / STATE_FILE
    if not path.exists():
        return None
    payload = torch.load(path, map_location=map_location, weights_only=True)
    model.load_state_dict(payload["model"], strict=True)
    for name, opt in optimizers.items():
        opt.load_state_dict(payload["optimizers"][name])
    set_rng_state(payload["rng"])
    p = payload["position"]
    pos = Position(step=p["step"], epoch=p["epoch"], batch_in_epoch=p["batch_in_epoch"], extra=p.get("extra", {}))
    return pos, payload.get("config", {})
