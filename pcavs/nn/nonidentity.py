"""Non-identity encoder E_n: the single-hourglass FAN (face-alignment network), cut to a vector.

The FAN predicts landmark heatmaps; PC-AVS reduces them to one 28x28 map and a 512-d feature
that carries pose and mouth shape but, after training on augmented frames, not identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pcavs.config import NonIdentityEncoderConfig


def _conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, bias=False)


class ConvBlock(nn.Module):
    """FAN's pre-activation residual block: three 3x3 convs (C/2, C/4, C/4) concatenated."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = _conv3x3(cin, cout // 2)
        self.bn2 = nn.BatchNorm2d(cout // 2)
        self.conv2 = _conv3x3(cout // 2, cout // 4)
        self.bn3 = nn.BatchNorm2d(cout // 4)
        self.conv3 = _conv3x3(cout // 4, cout // 4)
        self.downsample: nn.Module | None = None
        if cin != cout:
            self.downsample = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(True), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        out1 = self.conv1(F.relu(self.bn1(x)))
        out2 = self.conv2(F.relu(self.bn2(out1)))
        out3 = self.conv3(F.relu(self.bn3(out2)))
        residual = x if self.downsample is None else self.downsample(x)
        return torch.cat((out1, out2, out3), 1) + residual


class HourGlass(nn.Module):
    """Recursive hourglass; module names ``b1_L``, ``b2_L``, ``b2_plus_1``, ``b3_L`` as in FAN."""

    def __init__(self, depth: int, features: int) -> None:
        super().__init__()
        self.depth = depth
        self._build(depth, features)

    def _build(self, level: int, features: int) -> None:
        # registration order matches the official recursion, so state_dict order matches too
        self.add_module(f"b1_{level}", ConvBlock(features, features))
        self.add_module(f"b2_{level}", ConvBlock(features, features))
        if level > 1:
            self._build(level - 1, features)
        else:
            self.add_module("b2_plus_1", ConvBlock(features, features))
        self.add_module(f"b3_{level}", ConvBlock(features, features))

    def _level(self, level: int, x: Tensor) -> Tensor:
        up1 = self._modules[f"b1_{level}"](x)  # dropout in the original is a no-op at inference
        low = self._modules[f"b2_{level}"](F.max_pool2d(x, 2, stride=2))
        low = self._level(level - 1, low) if level > 1 else self._modules["b2_plus_1"](low)
        low = self._modules[f"b3_{level}"](low)
        return up1 + F.interpolate(low, size=up1.shape[2:], mode="bilinear", align_corners=False)

    def forward(self, x: Tensor) -> Tensor:
        return self._level(self.depth, x)


class FAN(nn.Module):
    """Images (B, 3, S, S) in [-1, 1] -> non-identity feature (B, feature_dim)."""

    HEAD = ("conv6", "fc", "bn5")  # the layers after the 68 heatmaps; the rest is the trunk

    def __init__(self, cfg: NonIdentityEncoderConfig, image_size: int) -> None:
        super().__init__()
        c = cfg.base_channels
        self.conv1 = nn.Conv2d(3, c, 7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = ConvBlock(c, 2 * c)
        self.conv3 = ConvBlock(2 * c, 2 * c)
        self.conv4 = ConvBlock(2 * c, 4 * c)
        self.m0 = HourGlass(cfg.hourglass_depth, 4 * c)
        self.top_m_0 = ConvBlock(4 * c, 4 * c)
        self.conv_last0 = nn.Conv2d(4 * c, 4 * c, 1)
        self.l0 = nn.Conv2d(4 * c, cfg.num_landmarks, 1)
        self.bn_end0 = nn.BatchNorm2d(4 * c)
        self.conv6 = nn.Conv2d(cfg.num_landmarks, cfg.head_channels, 3, stride=2, padding=1)
        heat = image_size // 4  # heatmaps at 1/4 of the input (56 for 224)
        self.fc = nn.Linear(cfg.head_channels * ((heat + 1) // 2) ** 2, cfg.feature_dim)
        self.bn5 = nn.BatchNorm2d(cfg.num_landmarks)

    def trunk_eval(self) -> FAN:
        """Put the layers up to the heatmaps in eval mode (a frozen trunk keeps its BN statistics)."""
        for name, module in self.named_children():
            if name not in self.HEAD:
                module.eval()
        return self

    def heatmaps(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(self.conv2(x), 2)
        x = self.conv4(self.conv3(x))
        x = self.top_m_0(self.m0(x))
        x = self.bn_end0(self.conv_last0(x))
        return self.l0(F.relu(x))

    def forward(self, x: Tensor) -> Tensor:
        net = self.conv6(F.relu(self.bn5(self.heatmaps(x))))
        return self.fc(F.relu(net.flatten(1)))
