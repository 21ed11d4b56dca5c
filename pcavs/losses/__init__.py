"""Training losses for PC-AVS, expressed as named, weighted terms.

Every loss lives in its own module and works on plain tensors; the trainer
wraps each value in a :class:`LossTerm` and reduces them with
:func:`weighted_sum`, which also produces a flat dict of floats for logging
(the pattern of descript-audio-codec's trainer).

Default weights (``pcavs.train.config.LossConfig``) are those of the released PC-AVS code
(``options/base_options.py``): ``lambda_feat=10``, ``lambda_vgg=10``,
``lambda_contrastive=100``, ``lambda_crossmodal=1``, ``lambda_D=1`` and an
unweighted identity cross-entropy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from pcavs.losses.contrastive import (
    contrastive_sync_loss,
    contrastive_sync_terms,
    sync_accuracy,
    sync_margin,
    sync_similarity,
)
from pcavs.losses.crossmodal import crossmodal_l1_loss
from pcavs.losses.feature_matching import feature_matching_loss
from pcavs.losses.gan import d_hinge_loss, d_hinge_terms, g_hinge_loss
from pcavs.losses.identity import identity_accuracy, identity_loss
from pcavs.losses.landmarks import heatmap_match_loss, heatmap_points, landmark_heatmaps, landmark_loss, soft_points
from pcavs.losses.perceptual import PerceptualLoss, StLPIPS
from pcavs.losses.posegeometry import head_geometry, output_geometry_loss, pose_geometry_loss
from pcavs.losses.region import masked_l1, mouth_mask
from pcavs.losses.structure import ssim_loss, ssim_map
from pcavs.losses.vgg import VGG19Features, default_vgg19_path, load_vgg19_weights

__all__ = [
    "LossTerm",
    "weighted_sum",
    "heatmap_match_loss",
    "heatmap_points",
    "landmark_heatmaps",
    "landmark_loss",
    "soft_points",
    "d_hinge_loss",
    "d_hinge_terms",
    "g_hinge_loss",
    "feature_matching_loss",
    "PerceptualLoss",
    "head_geometry",
    "output_geometry_loss",
    "pose_geometry_loss",
    "StLPIPS",
    "VGG19Features",
    "default_vgg19_path",
    "load_vgg19_weights",
    "contrastive_sync_loss",
    "contrastive_sync_terms",
    "sync_accuracy",
    "sync_margin",
    "sync_similarity",
    "crossmodal_l1_loss",
    "identity_loss",
    "identity_accuracy",
    "masked_l1",
    "mouth_mask",
    "ssim_loss",
    "ssim_map",
]


@dataclass(frozen=True)
class LossTerm:
    """One named loss value and the weight it enters the total with.

    ``key`` is the ``LossConfig`` field that holds ``weight``; it defaults to ``name``. A term's name
    differs from its key only where one weight scales several terms: both directions of the sync loss
    (``sync_v2a``, ``sync_a2v``: key ``sync``), D's real and fake halves (key ``gan``), and a term
    computed per generation source (``l1_audio``: key ``l1``).
    """

    name: str
    weight: float
    value: Tensor
    key: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", self.name)

    @property
    def weighted(self) -> Tensor:
        """``weight * value``."""
        return self.value * self.weight


def weighted_sum(terms: Iterable[LossTerm], total_key: str = "total") -> tuple[Tensor, dict[str, Tensor]]:
    """Sum ``weight * value`` over ``terms``.

    Returns the total (a scalar tensor that carries the graph) and the scalars to log, detached and
    still on the terms' device (the caller copies them to the host only when it logs): each term's
    *unweighted* value under its name, plus the weighted total under ``total_key``. Terms with weight 0
    are logged but left out of the total, so a disabled term never injects NaN (``0 * nan``) or an
    unused graph into the backward pass.
    """
    terms = list(terms)
    if not terms:
        raise ValueError("weighted_sum needs at least one LossTerm")
    names = [t.name for t in terms]
    if len(set(names)) != len(names) or total_key in names:
        raise ValueError(f"loss term names must be unique and differ from {total_key!r}: {names}")

    total: Tensor | None = None
    log: dict[str, Tensor] = {}
    for term in terms:
        if term.value.numel() != 1:
            raise ValueError(f"loss term {term.name!r} is not a scalar (shape {tuple(term.value.shape)})")
        log[term.name] = term.value.detach().reshape(())
        if term.weight == 0:
            continue
        contribution = term.weighted.reshape(())
        total = contribution if total is None else total + contribution
    if total is None:
        # Every weight is zero: return a zero on the terms' device/dtype.
        total = torch.zeros((), dtype=terms[0].value.dtype, device=terms[0].value.device)
    log[total_key] = total.detach()
    return total, log
