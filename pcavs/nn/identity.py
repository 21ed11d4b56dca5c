"""Identity encoder E_i: a ResNeXt (torchvision layout) giving a pooled identity vector and a map."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from pcavs.config import IdentityEncoderConfig


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (stride on the 3x3), grouped for ResNeXt."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int, groups: int, width_per_group: int) -> None:
        super().__init__()
        width = int(planes * (width_per_group / 64.0)) * groups
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes * self.expansion:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes * self.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * self.expansion),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNeXt(nn.Module):
    """The backbone; attribute names match torchvision's ResNet so its files load too."""

    def __init__(self, cfg: IdentityEncoderConfig) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, cfg.stem_channels, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(cfg.stem_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = cfg.stem_channels
        for i, (planes, blocks) in enumerate(zip(cfg.planes, cfg.blocks, strict=True)):
            layer = []
            for j in range(blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                layer.append(Bottleneck(inplanes, planes, stride, cfg.groups, cfg.width_per_group))
                inplanes = planes * Bottleneck.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
        self.num_stages = len(cfg.planes)
        if cfg.imagenet_classes:
            self.fc = nn.Linear(inplanes, cfg.imagenet_classes)  # unused; part of the official file

    def forward(self, x: Tensor, keep_stage: int = 0) -> tuple[Tensor, Tensor]:
        """-> (last stage's output, stage ``keep_stage``'s output; the last one when 0)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        kept = x
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
            if i + 1 == keep_stage:
                kept = x
        return x, (kept if keep_stage else x)


class IdentityEncoder(nn.Module):
    """Images (B, 3, H, W) in [-1, 1] -> identity vector (B, D) and identity map (B, C, s, s).

    No ImageNet normalisation: the released model takes [-1, 1] input directly.
    """

    def __init__(self, cfg: IdentityEncoderConfig, map_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.map_size = map_size
        self.model = ResNeXt(cfg)
        self.map_stage = cfg.map_source_stage
        self.conv1x1 = nn.Conv2d(cfg.planes[self.map_stage - 1] * Bottleneck.expansion, cfg.map_channels, 1)
        self.fc = nn.Linear(cfg.feature_dim, cfg.num_classes)  # identity classifier (training)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        feat, map_feat = self.model(images, self.map_stage)
        vector = feat.mean(dim=(2, 3))
        identity_map = F.adaptive_avg_pool2d(self.conv1x1(map_feat), self.map_size)
        return vector, identity_map

    def classify(self, vector: Tensor) -> Tensor:
        return self.fc(vector)
