"""Multi-scale PatchGAN discriminator (training only).

Each scale: conv 4x4/2 + LeakyReLU, then spectral-norm convs with instance norm (no affine, no
bias: the norm would cancel it), then a 1-channel patch prediction. The second scale sees the
image average-pooled 3x3/2. Outputs keep every intermediate feature for feature matching.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import spectral_norm

from pcavs.config import DiscriminatorConfig


class PatchDiscriminator(nn.Module):
    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        nf = cfg.base_channels
        stages: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(cfg.input_channels, nf, 4, stride=2, padding=2), nn.LeakyReLU(0.2))
        ]
        for n in range(1, cfg.layers):
            prev, nf = nf, min(nf * 2, cfg.max_channels)
            stride = 1 if n == cfg.layers - 1 else 2
            conv = spectral_norm(nn.Conv2d(prev, nf, 4, stride=stride, padding=2, bias=False))
            stages.append(nn.Sequential(conv, nn.InstanceNorm2d(nf, affine=False), nn.LeakyReLU(0.2)))
        stages.append(nn.Sequential(nn.Conv2d(nf, 1, 4, stride=1, padding=2)))
        for i, stage in enumerate(stages):
            self.add_module(f"model{i}", stage)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for stage in self.children():
            x = stage(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    """Image (B, 3, S, S) -> per scale, the list of features; the last one is the patch logits."""

    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.num_scales = cfg.num_scales
        for i in range(cfg.num_scales):
            self.add_module(f"discriminator_{i}", PatchDiscriminator(cfg))

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        out = []
        for i in range(self.num_scales):
            out.append(getattr(self, f"discriminator_{i}")(x))
            x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
        return out
