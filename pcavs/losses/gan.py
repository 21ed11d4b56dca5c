"""Hinge GAN loss for a multi-scale discriminator (pix2pixHD / SPADE convention).

A multi-scale discriminator returns, per scale, the list of its intermediate
feature maps; the *last* element of each inner list is the patch prediction
map. Losses are averaged over scales, as SPADE's ``GANLoss`` does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

# Per scale: either the list of features (prediction last) or just the prediction map.
DiscOutput = Tensor | Sequence[Tensor | Sequence[Tensor]]


def _predictions(pred: DiscOutput) -> list[Tensor]:
    """Extract the per-scale prediction maps (last element of each inner list)."""
    if isinstance(pred, Tensor):
        return [pred]
    if len(pred) == 0:
        raise ValueError("discriminator output is empty")
    out = []
    for scale in pred:
        if isinstance(scale, Tensor):
            out.append(scale)
        else:
            if len(scale) == 0:
                raise ValueError("a discriminator scale has no outputs")
            out.append(scale[-1])
    return out


def d_hinge_terms(pred_real: DiscOutput, pred_fake: DiscOutput) -> tuple[Tensor, Tensor]:
    """Discriminator hinge loss split into ``(real_term, fake_term)``.

    ``real_term = mean_s mean(relu(1 - D_s(real)))`` and
    ``fake_term = mean_s mean(relu(1 + D_s(fake)))``; SPADE logs them as
    ``D_real`` / ``D_Fake``.
    """
    real = _predictions(pred_real)
    fake = _predictions(pred_fake)
    if len(real) != len(fake):
        raise ValueError(f"real has {len(real)} scales but fake has {len(fake)}")
    loss_real = torch.stack([F.relu(1.0 - p).mean() for p in real]).mean()
    loss_fake = torch.stack([F.relu(1.0 + p).mean() for p in fake]).mean()
    return loss_real, loss_fake


def d_hinge_loss(pred_real: DiscOutput, pred_fake: DiscOutput) -> Tensor:
    """Discriminator hinge loss, averaged over scales: real term + fake term."""
    loss_real, loss_fake = d_hinge_terms(pred_real, pred_fake)
    return loss_real + loss_fake


def g_hinge_loss(pred_fake: DiscOutput) -> Tensor:
    """Generator hinge loss ``-mean(D(fake))``, averaged over scales."""
    return torch.stack([-p.mean() for p in _predictions(pred_fake)]).mean()
