"""Training stages as data: what each stage runs and what it trains (stylegan3 lists its phases so).

=========== ======================== =============================================== =====================
stage       phases (per step)        modules the G optimiser trains                   optimisers
=========== ======================== =============================================== =====================
landmarks   LandmarkPhase            E's FAN up to its 68 heatmaps                    G
sync        SyncPhase                E's FAN, E.to_mouth, A_sync's conv stack         G
identity    IdentityPhase            V's ResNet trunk, V.fc                           G
joint       GeneratorPhase, then     V (trunk, conv1x1, fc), E (FAN, to_mouth,        G, D
            DiscriminatorPhase       to_headpose, both embeddings), A_sync's convs,
                                     G (synthesis: conv1, to_rgb1, convs, to_rgbs),
                                     and D (its own optimiser)
=========== ======================== =============================================== =====================

``freeze_fan_trunk`` removes the FAN trunk from every stage after ``landmarks``. Trainable modules are
named by handle, never by parameter-name prefix; :func:`trainable_parameters` turns them into names
only to order the optimiser's parameter groups (a saved optimiser state loads back by that order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from pcavs.losses import PerceptualLoss
from pcavs.model import PCAVS
from pcavs.train.config import OptimConfig, TrainConfig
from pcavs.train.phases import GeneratorPhase, IdentityPhase, LandmarkPhase, SyncPhase


def fan_trunk(model: PCAVS) -> list[nn.Module]:
    """E's FAN up to and including its 68 heatmaps (the layers after them are ``FAN.HEAD``)."""
    fan = model.E.model
    return [m for name, m in fan.named_children() if name not in fan.HEAD]


def _v_trunk(model: PCAVS) -> list[nn.Module]:
    r = model.V.model
    return [r.conv1, r.bn1, *(m for name, m in r.named_children() if name.startswith("layer"))]


def _sync_modules(model: PCAVS) -> list[nn.Module]:
    return [model.E.model, model.E.to_mouth, model.A_sync.model]


def _identity_modules(model: PCAVS) -> list[nn.Module]:
    return [*_v_trunk(model), model.V.fc]


def _joint_modules(model: PCAVS) -> list[nn.Module]:
    e, g = model.E, model.G
    return [
        *_v_trunk(model), model.V.conv1x1, model.V.fc,
        e.model, e.to_mouth, e.to_headpose, e.headpose_embed, e.mouth_embed,
        model.A_sync.model,
        g.conv1, g.to_rgb1, g.convs, g.to_rgbs,
    ]  # fmt: skip


def _generator_phase(model: PCAVS, cfg: TrainConfig, device: torch.device) -> nn.Module:
    perceptual = PerceptualLoss(cfg.loss.perceptual, weights_path=cfg.loss.vgg19_weights or None)
    perceptual.to(device).requires_grad_(False)
    return GeneratorPhase(model, cfg.loss, perceptual, cfg.generate_from)


@dataclass(frozen=True)
class StageSpec:
    """One row of the table above."""

    name: str
    modules: Callable[[PCAVS], list[nn.Module]]  # what the G optimiser trains (before freeze_fan_trunk)
    phase: Callable[[PCAVS, TrainConfig, torch.device], nn.Module]  # the G step's phase
    discriminator: bool = False  # a D step (DiscriminatorPhase, optimiser "D") follows every G step
    freezable_fan: bool = True  # freeze_fan_trunk applies (not to the stage that trains the FAN)


STAGES: dict[str, StageSpec] = {
    "landmarks": StageSpec("landmarks", fan_trunk, lambda m, c, d: LandmarkPhase(m, c.loss),
                           freezable_fan=False),
    "sync": StageSpec("sync", _sync_modules, lambda m, c, d: SyncPhase(m, c.loss)),
    "identity": StageSpec("identity", _identity_modules, lambda m, c, d: IdentityPhase(m, c.loss)),
    "joint": StageSpec("joint", _joint_modules, _generator_phase, discriminator=True),
}  # fmt: skip


def _names(model: nn.Module, modules: list[nn.Module]) -> set[str]:
    ids = {id(p) for m in modules for p in m.parameters()}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def trainable_parameters(model: PCAVS, stage: str, freeze_fan_trunk: bool = False) -> set[str]:
    """Names of the parameters a stage trains (D's included in ``joint``); everything else is frozen."""
    spec = STAGES[stage]
    modules = spec.modules(model)
    if spec.discriminator:
        modules = [*modules, model.D]
    names = _names(model, modules)
    if freeze_fan_trunk and spec.freezable_fan:
        names -= _names(model, fan_trunk(model))
    return names


def lr_multipliers(model: PCAVS, opt: OptimConfig) -> dict[str, float]:
    """G's lr multiplier per parameter name: E's FAN, the rest of E, A_sync and V (the first that holds
    the parameter wins); everything else (G) keeps lr_g."""
    rules = [(model.E.model, opt.lr_mult_fan), (model.E, opt.lr_mult_mappings), (model.A_sync, opt.lr_mult_a),
             (model.V, opt.lr_mult_v)]  # fmt: skip
    by_id: dict[int, float] = {}
    for module, mult in rules:
        for p in module.parameters():
            by_id.setdefault(id(p), mult)
    return {n: by_id.get(id(p), 1.0) for n, p in model.named_parameters()}


__all__ = ["STAGES", "StageSpec", "fan_trunk", "lr_multipliers", "trainable_parameters"]
