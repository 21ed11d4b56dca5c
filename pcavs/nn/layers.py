"""StyleGAN2 building blocks in plain PyTorch (no compiled ops).

Parameter names and stored buffers follow the official PC-AVS generator (itself rosinality's
StyleGAN2) so its checkpoint loads strictly. The modulated convolution folds the style into the
activations so that one weight serves the whole batch (StyleGAN2's non-fused path); this is exact
up to float rounding and lets batching help, unlike the grouped per-sample-weight formulation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SQRT2 = math.sqrt(2.0)


def make_kernel(taps: Sequence[int], gain: float = 1.0) -> Tensor:
    """Separable FIR kernel normalised to sum ``gain``."""
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum() * gain


def upfirdn2d(x: Tensor, kernel: Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)) -> Tensor:
    """Upsample by zero insertion, pad, filter with ``kernel`` (true convolution), downsample."""
    b, c, h, w = x.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(b, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    if p0 < 0 or p1 < 0:
        x = x[:, :, max(-p0, 0) : x.shape[2] - max(-p1, 0), max(-p0, 0) : x.shape[3] - max(-p1, 0)]
    # depthwise: every channel filtered by the same (flipped, for a true convolution) kernel
    weight = torch.flip(kernel, [0, 1]).to(x.dtype).expand(c, 1, *kernel.shape)
    x = F.conv2d(x, weight, groups=c)
    return x[:, :, ::down, ::down] if down > 1 else x


class FusedLeakyReLU(nn.Module):
    """Bias, leaky ReLU (0.2), and the sqrt(2) gain that keeps activations unit-variance."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x + self.bias, 0.2) * SQRT2


class PixelNorm(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate: weights stored N(0,1), scaled at run time."""

    def __init__(
        self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0, activate: bool = False
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: Tensor) -> Tensor:
        if self.activate:
            return F.leaky_relu(F.linear(x, self.weight * self.scale) + self.bias * self.lr_mul, 0.2) * SQRT2
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class Blur(nn.Module):
    """FIR low-pass applied after a stride-2 transposed convolution."""

    def __init__(self, taps: Sequence[int], pad: tuple[int, int], gain: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("kernel", make_kernel(taps, gain))
        self.pad = pad

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2x FIR upsampling of the RGB skip path."""

    def __init__(self, taps: Sequence[int], factor: int = 2) -> None:
        super().__init__()
        self.register_buffer("kernel", make_kernel(taps, factor**2))
        p = len(taps) - factor
        self.factor = factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Style-modulated (optionally demodulated) convolution, optionally upsampling 2x.

    ``weight`` keeps the official shape ``(1, out, in, k, k)``. The forward pass scales the input
    channels by the style, convolves with the shared weight and rescales the output channels by the
    demodulation factor: the same result as per-sample weights, in one batched convolution.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        blur_kernel: Sequence[int] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.demodulate = demodulate
        self.upsample = upsample
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2
        if upsample:  # registered before ``modulation`` so the state_dict order is the official one
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), gain=factor**2)
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)

    def modulated(self, x: Tensor, style: Tensor) -> tuple[Tensor, Tensor | None]:
        """Convolution of the modulated input, and the per-sample output scale (demodulation).

        Returned apart so the caller can fuse the scale with its bias and activation in one pass:
        at 224x224 the elementwise passes cost as much as the convolution itself.
        """
        s = self.modulation(style)  # (B, in)
        w = self.weight[0] * self.scale  # (out, in, k, k)
        if self.upsample and x.device.type == "cpu":
            # oneDNN's transposed convolution and the depthwise blur run ~2x faster channels-last
            # (112->224: 60 vs 110 ms and 7 vs 18 ms); the result is converted back after the blur
            x = x.contiguous(memory_format=torch.channels_last)
        if x.shape[0] == 1:
            # one sample: scale the (small) weight instead of the (large) activation
            wm = w * s[0][None, :, None, None]
            if self.upsample:
                out = F.conv_transpose2d(x, wm.transpose(0, 1), stride=2)
            else:
                out = F.conv2d(x, wm, padding=self.padding)
        else:
            x = x * s[:, :, None, None]
            if self.upsample:
                out = F.conv_transpose2d(x, w.transpose(0, 1), stride=2)
            else:
                out = F.conv2d(x, w, padding=self.padding)
        if self.upsample:
            out = self.blur(out).contiguous()  # linear and per-channel: commutes with the demodulation
        if not self.demodulate:
            return out, None
        # sum_{i,k} (w[o,i,k] s[b,i])^2 = (s^2) @ (sum_k w^2)^T
        return out, torch.rsqrt((s * s) @ (w * w).sum(dim=(2, 3)).t() + 1e-8)  # (B, out)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        out, demod = self.modulated(x, style)
        return out if demod is None else out * demod[:, :, None, None]

    def forward_grouped(self, x: Tensor, style: Tensor) -> Tensor:
        """The official per-sample-weight formulation; kept as the reference for the fast path."""
        b, c, h, w_ = x.shape
        s = self.modulation(style).view(b, 1, c, 1, 1)
        weight = self.scale * self.weight * s
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(b, self.out_channels, 1, 1, 1)
        k = self.kernel_size
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(b * c, self.out_channels, k, k)
            out = F.conv_transpose2d(x.reshape(1, b * c, h, w_), weight, stride=2, groups=b)
            out = self.blur(out.view(b, self.out_channels, *out.shape[2:]))
        else:
            weight = weight.view(b * self.out_channels, c, k, k)
            out = F.conv2d(x.reshape(1, b * c, h, w_), weight, padding=self.padding, groups=b)
            out = out.view(b, self.out_channels, *out.shape[2:])
        return out


class NoiseInjection(nn.Module):
    """Adds ``weight * noise``; the noise map is chosen by the caller (random, stored, or none)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, noise: Tensor | None) -> Tensor:
        return x if noise is None else x + self.weight * noise
