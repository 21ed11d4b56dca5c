"""Weights on disk: the official ``latest_net_*.pth`` folder and our safetensors + config.json.

Every load is strict; a mismatch names the file, the network, and the missing, unexpected and
wrongly shaped keys, so a partial or foreign checkpoint is never half-loaded silently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from pcavs.config import ModelConfig, from_dict, preset, to_dict
from pcavs.errors import UserError
from pcavs.fileio import atomic_path, atomic_write_text
from pcavs.model import INFERENCE_NETWORKS, PCAVS

FORMAT = "pcavs-weights"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


class CheckpointError(UserError, ValueError):
    """A weights file or folder that cannot be used as it is."""


def official_file(folder: Path, network: str) -> Path:
    return Path(folder) / f"latest_net_{network}.pth"


def load_strict(net: nn.Module, state: Mapping[str, Tensor], network: str, source: str | Path) -> None:
    """``load_state_dict(strict=True)`` with an error that lists every key problem."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        lines = [f"{source}: the weights for network {network} do not fit the model"]
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", shapes)):
            if items:
                shown = ", ".join(items[:12]) + (f", ... ({len(items) - 12} more)" if len(items) > 12 else "")
                lines.append(f"  {title} ({len(items)}): {shown}")
        lines.append("  Check that the file belongs to this preset (see config.json) and is complete.")
        raise CheckpointError("\n".join(lines))
    check_finite(state, network, source)
    net.load_state_dict(state, strict=True)


def check_finite(state: Mapping[str, Tensor], network: str, source: str | Path) -> None:
    """Refuse tensors holding NaN or inf: corrupted data would load silently and give black frames."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        shown = ", ".join(bad[:8]) + (f", ... ({len(bad) - 8} more)" if len(bad) > 8 else "")
        raise CheckpointError(
            f"{source}: {len(bad)} tensor(s) of network {network} hold NaN or inf values ({shown}); the file "
            "is corrupted: re-download it (official checkpoint), re-run pcavs convert-official, or use "
            "another checkpoint"
        )


def is_official_folder(folder: Path) -> bool:
    return any(official_file(folder, n).exists() for n in INFERENCE_NETWORKS)


def is_pcavs_folder(folder: Path) -> bool:
    return (Path(folder) / CONFIG_FILE).exists() or (Path(folder) / WEIGHTS_FILE).exists()


def load_official(folder: str | Path, cfg: ModelConfig | None = None, device: str | torch.device = "cpu") -> PCAVS:
    """Build the ``official`` preset and fill it from ``latest_net_{G,V,E,A_sync}.pth``."""
    folder = Path(folder)
    absent = [official_file(folder, n).name for n in INFERENCE_NETWORKS if not official_file(folder, n).exists()]
    if absent:
        raise CheckpointError(
            f"{folder}: official checkpoint folder is incomplete, missing {', '.join(absent)}. "
            "It needs latest_net_G.pth, latest_net_V.pth, latest_net_E.pth and latest_net_A_sync.pth "
            "from the released PC-AVS checkpoint."
        )
    model = PCAVS(cfg or preset("official"))  # built after the file check: an incomplete folder fails at once
    for name in INFERENCE_NETWORKS:
        path = official_file(folder, name)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated or not a torch file
            raise CheckpointError(f"{path}: cannot be read as a PyTorch state_dict ({exc}); re-download it") from exc
        if not isinstance(state, Mapping):
            raise CheckpointError(f"{path}: expected a plain state_dict, found {type(state).__name__}")
        load_strict(getattr(model, name), state, name, path)
    return model.to(device).eval()


def export_official(model: PCAVS, folder: str | Path) -> list[Path]:
    """Write ``latest_net_*.pth`` files the official code loads (plain state_dicts)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in INFERENCE_NETWORKS:
        state = {k: v.detach().cpu().contiguous() for k, v in getattr(model, name).state_dict().items()}
        path = official_file(folder, name)
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
        written.append(path)
    return written


def save_weights(
    model: PCAVS, folder: str | Path, include_discriminator: bool = False, extra: dict | None = None
) -> Path:
    """Our format: ``model.safetensors`` (keys ``G.``, ``V.``, ...) and ``config.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, Tensor] = {}
    for name, net in model.networks().items():
        if name == "D" and not include_discriminator:
            continue
        for k, v in net.state_dict().items():
            tensors[f"{name}.{k}"] = v.detach().cpu().contiguous()
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "preset": model.cfg.name, "model": to_dict(model.cfg)}
    if extra:
        meta.update(extra)
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT})
    atomic_write_text(folder / CONFIG_FILE, json.dumps(meta, indent=2) + "\n")
    return folder


def read_config(folder: str | Path) -> ModelConfig:
    path = Path(folder) / CONFIG_FILE
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise CheckpointError(
            f"{path}: missing; a pcavs weights folder needs config.json beside {WEIGHTS_FILE}"
        ) from exc
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from exc
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a pcavs weights config (format={meta.get('format')!r})")
    if meta.get("version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by a newer pcavs (version {meta['version']}); upgrade pcavs")
    try:
        return from_dict(ModelConfig, meta["model"])
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: invalid model config ({exc})") from exc


def load_weights_file(folder: str | Path, with_discriminator: bool = False) -> PCAVS:
    folder = Path(folder)
    cfg = read_config(folder)
    path = folder / WEIGHTS_FILE
    if not path.exists():
        raise CheckpointError(f"{path}: missing; the folder has config.json but no weights")
    try:
        tensors = load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot be read as safetensors ({exc}); the file may be truncated") from exc
    has_d = any(k.startswith("D.") for k in tensors)
    model = PCAVS(cfg, with_discriminator=with_discriminator and has_d)
    networks = model.networks()
    grouped: dict[str, dict[str, Tensor]] = {n: {} for n in networks}
    stray = []
    for key, value in tensors.items():
        net, _, rest = key.partition(".")
        if net in grouped:
            grouped[net][rest] = value
        elif not (net == "D" and not with_discriminator):
            stray.append(key)
    if stray:
        raise CheckpointError(f"{path}: unexpected keys outside the networks {list(networks)}: {', '.join(stray[:8])}")
    for name, net in networks.items():
        load_strict(net, grouped[name], name, path)
    return model


def load_model(path: str | Path, device: str | torch.device = "cpu", with_discriminator: bool = False) -> PCAVS:
    """Load either format, detected from the folder's contents; the model is in eval mode."""
    folder = Path(path)
    if not folder.exists():
        raise CheckpointError(f"{folder}: weights folder does not exist; pass --weights DIR")
    if folder.is_file():
        folder = folder.parent if folder.name in (WEIGHTS_FILE, CONFIG_FILE) else folder
        if folder.is_file():
            raise CheckpointError(f"{folder}: expected a weights folder, got a file")
    if is_pcavs_folder(folder):
        model = load_weights_file(folder, with_discriminator=with_discriminator)
    elif is_official_folder(folder):
        model = load_official(folder)
    else:
        raise CheckpointError(
            f"{folder}: no weights found. Expected either {CONFIG_FILE} + {WEIGHTS_FILE} (pcavs format) "
            "or latest_net_{G,V,E,A_sync}.pth (the official PC-AVS checkpoint)."
        )
    return model.to(device).eval()


def convert_official(src: str | Path, dst: str | Path) -> Path:
    """Official folder -> our format, checked strictly on the way in."""
    return save_weights(load_official(src), dst, extra={"converted_from": str(Path(src).resolve())})
