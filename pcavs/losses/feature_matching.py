"""Discriminator feature-matching loss (pix2pixHD / SPADE ``GAN_Feat`` loss)."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor


def feature_matching_loss(
    feats_fake: Sequence[Sequence[Tensor]], feats_real: Sequence[Sequence[Tensor]]
) -> Tensor:
    """L1 between the discriminator's intermediate features of fake and real images.

    Both arguments are multi-scale discriminator outputs (per scale, the list
    of features with the prediction map last). The last element of each scale
    is skipped (it is the prediction, not a feature), real features are
    detached (they are the target), and the per-layer L1 means are summed over
    layers and divided by the number of scales, exactly as SPADE's
    ``compute_GAN_Feat_loss`` (with ``lambda_image = 1``; the weight is
    applied outside).
    """
    if len(feats_fake) != len(feats_real):
        raise ValueError(f"fake has {len(feats_fake)} scales but real has {len(feats_real)}")
    if len(feats_fake) == 0:
        raise ValueError("discriminator output is empty")
    num_d = len(feats_fake)
    total: Tensor | None = None
    for fake_scale, real_scale in zip(feats_fake, feats_real, strict=True):
        if len(fake_scale) != len(real_scale):
            raise ValueError("fake and real have a different number of features at some scale")
        for fake, real in zip(fake_scale[:-1], real_scale[:-1], strict=True):
            term = F.l1_loss(fake, real.detach())
            total = term if total is None else total + term
    if total is None:
        # No intermediate features at any scale: nothing to match.
        return feats_fake[0][-1].new_zeros(())
    return total / num_d
