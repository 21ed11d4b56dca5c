"""The StyleGAN2-style generator G: identity map in, style-modulated upsampling, RGB out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pcavs.config import GeneratorConfig
from pcavs.nn.layers import SQRT2, EqualLinear, FusedLeakyReLU, ModulatedConv2d, NoiseInjection, PixelNorm, Upsample

NoiseMode = Literal["random", "const", "none"]
#: Random-noise source: one generator for the batch, one per sample, or None (the global one).
Generators = torch.Generator | Sequence[torch.Generator] | None


class StyledConv(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, style_dim: int, upsample: bool, blur_kernel: tuple[int, ...]) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, style_dim, upsample=upsample, blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_ch)

    def forward(self, x: Tensor, style: Tensor, noise: Callable[[Tensor], Tensor | None]) -> Tensor:
        raw, demod = self.conv.modulated(x, style)
        # lrelu(z) * sqrt2 == lrelu(z * sqrt2): fold the gain into the scale and the bias, so that
        # demodulation, noise, bias and gain take one fused pass and the activation one more
        scale = (demod * SQRT2)[:, :, None, None]
        bias = self.activate.bias * SQRT2
        n = noise(raw)
        if n is not None:
            bias = bias + (self.noise.weight * SQRT2) * n  # noise enters before the bias, as in G
        return F.leaky_relu_(torch.addcmul(bias, raw, scale), 0.2)


class ToRGB(nn.Module):
    def __init__(self, in_ch: int, style_dim: int, upsample: bool, blur_kernel: tuple[int, ...]) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_ch, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: Tensor, style: Tensor, skip: Tensor | None) -> Tensor:
        # a 1x1 modulated conv without demodulation is a per-sample matrix product: modulate the
        # (3 x C) weight rather than the (C x H x W) activation
        conv = self.conv
        w = conv.weight[0, :, :, 0, 0] * conv.scale  # (3, C)
        wm = w[None] * conv.modulation(style)[:, None, :]  # (B, 3, C)
        b, c, h, w_ = x.shape
        out = torch.bmm(wm, x.reshape(b, c, h * w_)).view(b, 3, h, w_) + self.bias
        return out if skip is None else out + self.upsample(skip)


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))


class Generator(nn.Module):
    """G(style, identity map) -> image in [-1, 1].

    The style vector (identity | mouth | pose) is used directly as W for every layer, as in the
    released model; the mapping MLP ``style`` is built only so the official file loads strictly.
    """

    def __init__(self, cfg: GeneratorConfig, style_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.style_dim = style_dim
        blur = tuple(cfg.blur_kernel)
        ch = cfg.channels
        self.style = nn.Sequential(
            PixelNorm(),
            *[
                EqualLinear(style_dim, style_dim, lr_mul=cfg.mapping_lr_mul, activate=True)
                for _ in range(cfg.mapping_layers)
            ],
        )
        if cfg.constant_input:
            self.input = ConstantInput(ch[0], cfg.init_size)
        self.conv1 = StyledConv(ch[0], ch[0], style_dim, upsample=False, blur_kernel=blur)
        self.to_rgb1 = ToRGB(ch[0], style_dim, upsample=False, blur_kernel=blur)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        for c_in, c_out in zip(ch[:-1], ch[1:], strict=True):
            self.convs.append(StyledConv(c_in, c_out, style_dim, upsample=True, blur_kernel=blur))
            self.convs.append(StyledConv(c_out, c_out, style_dim, upsample=False, blur_kernel=blur))
            self.to_rgbs.append(ToRGB(c_out, style_dim, upsample=True, blur_kernel=blur))
        self.noises = nn.Module()
        for i in range(cfg.num_layers):
            res = cfg.init_size * 2 ** ((i + 1) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, res, res))

    def _noise(self, mode: NoiseMode, index: int, generator: Generators, x: Tensor) -> Tensor | None:
        if mode == "none":
            return None
        if mode == "const":
            return getattr(self.noises, f"noise_{index}")
        b, _, h, w = x.shape
        if isinstance(generator, Sequence):
            # one generator per sample: a frame's noise does not depend on which batch it is in
            if len(generator) != b:
                raise ValueError(f"got {len(generator)} noise generators for a batch of {b}")
            return torch.cat([torch.randn(1, 1, h, w, generator=g, device=x.device, dtype=x.dtype) for g in generator])
        return torch.randn(b, 1, h, w, generator=generator, device=x.device, dtype=x.dtype)

    def forward(
        self,
        style: Tensor,
        identity_map: Tensor,
        noise: NoiseMode = "random",
        generator: Generators = None,
    ) -> Tensor:
        """``style`` (B, style_dim), ``identity_map`` (B, C, init, init) -> image (B, 3, size, size).

        ``noise``: "random" draws fresh noise (the official behaviour, seeded by ``generator``: one
        for the batch, or a sequence of B, one per sample), "const" uses the stored noise maps,
        "none" skips the noise input.
        """
        x = self.conv1(identity_map, style, partial(self._noise, noise, 0, generator))
        skip = self.to_rgb1(x, style, None)
        for i, to_rgb in enumerate(self.to_rgbs):
            x = self.convs[2 * i](x, style, partial(self._noise, noise, 2 * i + 1, generator))
            x = self.convs[2 * i + 1](x, style, partial(self._noise, noise, 2 * i + 2, generator))
            skip = to_rgb(x, style, skip)
        return torch.tanh(skip)
