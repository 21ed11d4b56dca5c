"""Check our networks against vectors computed by the official PC-AVS code.

A vector folder holds ``state_dict_layout.json`` (every official key, shape and dtype, plus a salt)
and ``reference.safetensors`` (inputs, intermediate and final tensors; metadata ``salt`` and
``frames``). The official networks were filled by a deterministic rule from the salt; we fill ours
by the same rule, run every stage on the stored inputs and compare. Everything is read from the
files, so any vector set made the same way passes, whatever its salt.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from torch import Tensor

from pcavs import audio
from pcavs.config import preset
from pcavs.model import INFERENCE_NETWORKS, PCAVS

TOLERANCE = 1e-4


@dataclass
class Row:
    name: str
    shape: tuple[int, ...]
    max_abs_diff: float

    @property
    def ok(self) -> bool:
        return math.isfinite(self.max_abs_diff) and self.max_abs_diff <= TOLERANCE


def rule_tensor(salt: str, network: str, key: str, shape: list[int], dtype: str, fixed: Mapping[str, Tensor]) -> Tensor:
    """The value the vector maker put in ``network``'s ``key`` (see the reference README)."""
    leaf = key.rsplit(".", 1)[-1]
    if dtype.startswith("int"):
        return torch.zeros(shape, dtype=getattr(torch, dtype))
    if leaf == "kernel":
        return fixed[f"fixed.{network}.{key}"].clone()
    g = torch.Generator().manual_seed(zlib.crc32(f"{salt}/{network}/{key}".encode()))
    r = torch.randn(shape, generator=g, dtype=torch.float32)
    if leaf == "running_var":
        return 1 + 0.25 * r.abs()
    if leaf == "running_mean":
        return 0.1 * r
    if key.endswith("noise.weight"):
        return torch.zeros(shape)
    if r.dim() >= 2:
        if network == "G":
            return r * 0.3 if "to_rgb" in key else r
        return r / math.sqrt(math.prod(shape[1:]))
    if leaf == "bias":
        return 0.1 * r
    return 1 + 0.1 * r


def load_vectors(folder: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    path = folder / "reference.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found; point verify-reference at a reference vector folder")
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


def build_reference_model(folder: Path, tensors: Mapping[str, Tensor]) -> tuple[PCAVS, str]:
    """The ``official`` preset filled by the weight rule, with the salt read from the files."""
    layout = json.loads((folder / "state_dict_layout.json").read_text())
    salt = layout["salt"]
    model = PCAVS(preset("official")).eval()
    for network in INFERENCE_NETWORKS:
        state = {
            key: rule_tensor(salt, network, key, shape, dtype, tensors)
            for key, shape, dtype in layout["networks"][network]
        }
        getattr(model, network).load_state_dict(state, strict=True)
    return model, salt


def _stages(model: PCAVS, t: Mapping[str, Tensor], frames: list[int]) -> dict[str, Callable[[], Tensor]]:
    """Every stored tensor, recomputed; each entry is lazy so one failure names its stage."""
    cache: dict[str, Tensor] = {}

    def get(name: str) -> Tensor:
        if name not in cache:
            cache[name] = stages[name]()
        return cache[name]

    E = model.E
    w = model.cfg.mouth_weight
    ref_img, pose_img = t["input.identity"], t["input.pose"]
    stages: dict[str, Callable[[], Tensor]] = {
        "audio.waveform_normalized": lambda: torch.from_numpy(audio.normalize_rms(t["input.waveform"])).float(),
        "audio.mel": lambda: audio.melspectrogram(t["input.waveform"]),
        "input.spectrogram": lambda: audio.mel_windows(get("audio.mel"), frames),
        "out.identity_vector": lambda: model.V(ref_img)[0],
        "out.identity_map": lambda: model.V(ref_img)[1],
        "out.audio_content": lambda: model.encode_audio(t["input.spectrogram"]),
        "out.nonidentity": lambda: E(pose_img),
        "out.pose_feature": lambda: E.pose_feature(get("out.nonidentity")),
        "out.pose_code": lambda: E.pose_code(get("out.nonidentity")),
        "out.ref_pose_code": lambda: model.encode_pose(ref_img),
        "out.mouth_pose_style": lambda: torch.cat(
            [model.mouth_style(get("out.audio_content"), w), get("out.pose_code")], 1
        ),
        "out.generator_style": lambda: model.style(
            model.encode_identity(ref_img), model.mouth_style(get("out.audio_content")), get("out.pose_code")
        ),
        "out.image": lambda: model.G(get("out.generator_style"), _id_map(model, ref_img, 2), noise="none"),
        "out.image_ref_pose": lambda: model.generate(
            model.encode_identity(ref_img),
            model.mouth_style(get("out.audio_content")),
            get("out.ref_pose_code").expand(2, -1),
            noise="none",
        ),
        # the public one-call API, as the inference pipeline uses it
        "out.inference_driven": lambda: model(ref_img, t["input.spectrogram"], pose_img, noise="none"),
        "out.inference_ref": lambda: get("out.image_ref_pose"),
    }
    return stages


def _id_map(model: PCAVS, ref_img: Tensor, batch: int) -> Tensor:
    return model.encode_identity(ref_img).map.expand(batch, -1, -1, -1)


def verify(folder: str | Path, extra_checks: bool = True) -> list[Row]:
    """Run every stage; one row per stored tensor (plus the grouped-convolution generator)."""
    folder = Path(folder)
    tensors, meta = load_vectors(folder)
    model, salt = build_reference_model(folder, tensors)
    if meta.get("salt", salt) != salt:
        raise ValueError(f"{folder}: salt in reference.safetensors ({meta.get('salt')}) != layout ({salt})")
    frames = [int(f) for f in json.loads(meta["frames"])]
    stages = _stages(model, tensors, frames)
    rows = []
    with torch.no_grad():
        for name in sorted(tensors):
            if name.startswith(("input.waveform", "input.identity", "input.pose", "fixed.")):
                continue
            if name not in stages:
                rows.append(Row(name, tuple(tensors[name].shape), float("inf")))
                continue
            rows.append(_compare(name, stages[name](), tensors[name]))
        if extra_checks:
            # the official per-sample-weight formulation of the modulated convs, for the fast path
            style = stages["out.generator_style"]()
            out = _grouped_generator(model, style, _id_map(model, tensors["input.identity"], 2))
            rows.append(_compare("out.image (official grouped formulation)", out, tensors["out.image"]))
            single = torch.cat([model.G(style[i : i + 1], _id_map(model, tensors["input.identity"], 1), noise="none")
                                for i in range(style.shape[0])])  # fmt: skip
            rows.append(_compare("out.image (one frame per call)", single, tensors["out.image"]))
    return rows


def _compare(name: str, ours: Tensor, ref: Tensor) -> Row:
    if tuple(ours.shape) != tuple(ref.shape):
        return Row(f"{name} (shape {tuple(ours.shape)})", tuple(ref.shape), float("inf"))
    return Row(name, tuple(ref.shape), float((ours.double() - ref.double()).abs().max()))


def _grouped_generator(model: PCAVS, style: Tensor, id_map: Tensor) -> Tensor:
    """G in the official formulation (per-sample weights, grouped convs, unfused epilogue).

    Written independently of ``Generator.forward`` so the fast path is checked against it.
    """
    g = model.G

    def styled(layer, x: Tensor) -> Tensor:
        return layer.activate(layer.conv.forward_grouped(x, style))  # noise weight is 0 here

    def rgb(layer, x: Tensor, skip: Tensor | None) -> Tensor:
        out = layer.conv.forward_grouped(x, style) + layer.bias
        return out if skip is None else out + layer.upsample(skip)

    x = styled(g.conv1, id_map)
    skip = rgb(g.to_rgb1, x, None)
    for i, to_rgb in enumerate(g.to_rgbs):
        x = styled(g.convs[2 * i + 1], styled(g.convs[2 * i], x))
        skip = rgb(to_rgb, x, skip)
    return torch.tanh(skip)


def format_table(rows: list[Row], salt: str | None = None) -> str:
    width = max(len(r.name) for r in rows)
    lines = [f"{'tensor':<{width}}  {'shape':<18} {'max abs diff':>12}  ok"]
    for r in rows:
        lines.append(f"{r.name:<{width}}  {str(list(r.shape)):<18} {r.max_abs_diff:>12.3e}  {'yes' if r.ok else 'NO'}")
    bad = sum(not r.ok for r in rows)
    lines.append(
        f"{len(rows) - bad}/{len(rows)} tensors within {TOLERANCE:g}" + (f" (salt {salt})" if salt else "")
    )
    return "\n".join(lines)
