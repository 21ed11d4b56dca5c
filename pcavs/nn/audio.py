"""Audio content encoder: half-width SE-ResNet34 with self-attentive pooling (``latest_net_A_sync``).

Input is one mel window (B, 1, 80, 20): 20 rows of 10 ms covering video frames i-2..i+2.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pcavs.config import AudioEncoderConfig


class SELayer(nn.Module):
    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction),
            nn.ReLU(inplace=True),
            nn.Linear(channels // reduction, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.fc(x.mean(dim=(2, 3)))[:, :, None, None]


class SEBasicBlock(nn.Module):
    """Note the released order: conv, ReLU, then BatchNorm in the first half of the block."""

    def __init__(self, inplanes: int, planes: int, stride: int, reduction: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.se = SELayer(planes, reduction)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn1(self.relu(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(out + residual)


class ResNetSE(nn.Module):
    def __init__(self, cfg: AudioEncoderConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.conv1 = nn.Conv2d(1, c[0], 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.bn1 = nn.BatchNorm2d(c[0])
        inplanes = c[0]
        for i, (planes, blocks) in enumerate(zip(c, cfg.blocks, strict=True)):
            stride = 1 if i == 0 else 2
            layer = []
            for j in range(blocks):
                layer.append(SEBasicBlock(inplanes, planes, stride if j == 0 else 1, cfg.se_reduction))
                inplanes = planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
        self.num_stages = len(c)
        pooled = c[-1] * cfg.n_mels // 8  # frequency axis after three stride-2 stages, flattened
        self.attention = nn.Sequential(
            nn.Conv1d(pooled, cfg.attention_dim, 1),
            nn.ReLU(),
            nn.BatchNorm1d(cfg.attention_dim),
            nn.Conv1d(cfg.attention_dim, pooled, 1),
            nn.Softmax(dim=2),
        )
        self.fc = nn.Linear(pooled, cfg.feature_dim)

    def forward(self, mel: Tensor) -> Tensor:
        x = self.bn1(self.relu(self.conv1(mel)))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        x = x.reshape(x.shape[0], -1, x.shape[-1])  # (B, C*F, T)
        x = torch.sum(x * self.attention(x), dim=2)  # self-attentive pooling over time
        return self.fc(x)


class AudioEncoder(nn.Module):
    """Mel windows (B, 1, n_mels, window) -> speech-content feature (B, feature_dim)."""

    def __init__(self, cfg: AudioEncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.model = ResNetSE(cfg)
        self.fc = nn.Linear(cfg.feature_dim, cfg.num_classes)  # word/identity head (training)

    def forward(self, mel: Tensor) -> Tensor:
        return self.model(mel)
