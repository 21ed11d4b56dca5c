"""Perceptual reconstruction loss with a choice of backbone.

Backends:

* ``"vgg19"``: SPADE's ``VGGLoss`` (used by PC-AVS): L1 between the five
  VGG19 relu slices of fake and (detached) real, weighted
  ``[1/32, 1/16, 1/8, 1/4, 1]``. Needs torchvision's ImageNet checkpoint on
  disk (see :mod:`pcavs.losses.vgg`).
* ``"stlpips"``: shift-tolerant LPIPS (Ghildyal & Liu, ECCV 2022). The
  ``stlpips-pytorch`` wheel ships complete weight files (backbone *and*
  linear calibration), but its Python code imports torchvision, IPython and
  torchsummary at module import. So only its *weight files* are used: the
  network is re-implemented here in pure torch (:class:`StLPIPS`, same module
  names, strict load), and the files are located with
  ``importlib.util.find_spec`` without importing the package's code. Works
  fully offline.
* ``"none"``: returns zero (for quick runs without any weights).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from pcavs.losses.vgg import VGG19Features, load_vgg19_weights

Backend = Literal["vgg19", "stlpips", "none"]

# SPADE VGGLoss weights for relu1_1 ... relu5_1.
VGG_LAYER_WEIGHTS: tuple[float, ...] = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)

# Smallest side each backbone handles: VGG19 pools 4x before relu5_1 (>= 16;
# 32 keeps relu5_1 at least 2x2). ST-LPIPS reflection-pads by 2 before each of
# its 4 blur-pool stages, which fails once a side reaches 2 pixels (needs > ~40).
_MIN_SIZE = {"vgg19": 32, "stlpips": 64}


def _upsize(x: Tensor, min_size: int) -> Tensor:
    """Bilinearly upscale ``x`` so its shorter side is at least ``min_size`` (aspect kept)."""
    h, w = x.shape[-2:]
    if min(h, w) >= min_size:
        return x
    scale = min_size / min(h, w)
    size = (max(min_size, round(h * scale)), max(min_size, round(w * scale)))
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


# --------------------------------------------------------------------------- ST-LPIPS


class _BlurPool(nn.Module):
    """Anti-aliased stride-2 downsampling: reflect pad 2, 3x3 binomial blur, subsample.

    Mirrors ``Downsample(filt_size=3, stride=2, pad_more=True)`` of the
    reference code; the filter is a buffer named ``filt`` because the weight
    files store it.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        a = torch.tensor([1.0, 2.0, 1.0])
        filt = a[:, None] * a[None, :]
        filt = filt / filt.sum()
        self.register_buffer("filt", filt[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x, (2, 2, 2, 2), mode="reflect")
        return F.conv2d(x, self.filt, stride=2, groups=x.shape[1])


class _Slices(nn.Module):
    """Five sequential slices whose children keep their global layer index as name."""

    def __init__(self, layers: list[nn.Module], ends: tuple[int, ...]) -> None:
        super().__init__()
        start = 0
        for k, end in enumerate(ends, start=1):
            seq = nn.Sequential()
            for i in range(start, end):
                seq.add_module(str(i), layers[i])
            self.add_module(f"slice{k}", seq)
            start = end
        self.num_slices = len(ends)

    def forward(self, x: Tensor) -> list[Tensor]:
        outs = []
        for k in range(1, self.num_slices + 1):
            x = getattr(self, f"slice{k}")(x)
            outs.append(x)
        return outs


def _st_vgg16() -> tuple[_Slices, tuple[int, ...]]:
    # VGG16 (cfg "D") where each 2x2/2 max-pool became max-pool 2x2/1 + blur-pool.
    cfg: tuple[int | str, ...] = (
        64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512,
    )  # fmt: skip
    layers: list[nn.Module] = []
    in_ch = 3
    for v in cfg:
        if v == "M":
            layers += [nn.MaxPool2d(kernel_size=2, stride=1), _BlurPool(in_ch)]
        else:
            assert isinstance(v, int)
            layers += [nn.Conv2d(in_ch, v, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            in_ch = v
    # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
    return _Slices(layers, (4, 10, 18, 26, 34)), (64, 128, 256, 512, 512)


def _st_alexnet() -> tuple[_Slices, tuple[int, ...]]:
    # AlexNet with stride-1 first conv followed by blur-pool, and max-pools 3x3/1 + blur-pool.
    layers: list[nn.Module] = [
        nn.Conv2d(3, 64, kernel_size=11, stride=1, padding=2),
        _BlurPool(64),
        nn.ReLU(inplace=False),
        nn.MaxPool2d(kernel_size=3, stride=1),
        _BlurPool(64),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(inplace=False),
        nn.MaxPool2d(kernel_size=3, stride=1),
        _BlurPool(192),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(inplace=False),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=False),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=False),
    ]
    return _Slices(layers, (3, 7, 11, 13, 15)), (64, 192, 384, 256, 256)


class _NetLin(nn.Module):
    """LPIPS calibration: 1x1 conv to one channel, no bias (``model.1`` as in the weight files)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        # Index 0 is the reference's Dropout, a no-op in eval mode: keep the slot for the key names.
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class _ScalingLayer(nn.Module):
    """LPIPS input scaling (v0.1): ``(x - shift) / scale`` for inputs in [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.shift) / self.scale


def stlpips_weights_path(net: Literal["vgg", "alex"] = "vgg") -> Path:
    """Path of the weight file shipped in the ``stlpips-pytorch`` wheel (package code is not imported)."""
    spec = importlib.util.find_spec("stlpips_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "perceptual='stlpips' needs the weight files of the `stlpips-pytorch` package: "
            "run `pip install stlpips-pytorch` (only its .pth files are used; torchvision is not needed), "
            "pass weights_path=..., or choose perceptual='vgg19' or 'none'."
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "weights" / "vST0.0" / f"{net}_shift_tolerant.pth"


class StLPIPS(nn.Module):
    """Shift-tolerant LPIPS distance (``stlpips.LPIPS(net=..., variant="shift_tolerant")``).

    Pure-torch re-implementation with the reference module names, so the
    shipped weight files load strictly. ``forward(x, y)`` takes images in
    ``[-1, 1]`` and returns the per-sample distance, shape ``(N,)``. The
    calibration dropout of the reference is omitted (it is inactive in eval
    mode, the only mode the metric is meant to run in).
    """

    def __init__(self, net: Literal["vgg", "alex"] = "vgg", weights_path: str | Path | None = None) -> None:
        super().__init__()
        if net == "vgg":
            self.net, chns = _st_vgg16()
        elif net == "alex":
            self.net, chns = _st_alexnet()
        else:
            raise ValueError(f"unknown ST-LPIPS net {net!r} (expected 'vgg' or 'alex')")
        self.scaling_layer = _ScalingLayer()
        for k, c in enumerate(chns):
            self.add_module(f"lin{k}", _NetLin(c))
        self.num_layers = len(chns)

        path = Path(weights_path) if weights_path is not None else stlpips_weights_path(net)
        if not path.is_file():
            raise FileNotFoundError(
                f"ST-LPIPS weights not found at {path}: reinstall `stlpips-pytorch` or pass weights_path=..."
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.load_state_dict(state, strict=True)
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def _unit(x: Tensor, eps: float = 1e-10) -> Tensor:
        # Channel-wise unit normalisation as in LPIPS; vector_norm (unlike sqrt(sum x^2))
        # has a finite gradient at all-zero feature vectors.
        return x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + eps)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Per-sample ST-LPIPS distance between ``x`` and ``y`` (both in ``[-1, 1]``)."""
        fx = self.net(self.scaling_layer(x))
        fy = self.net(self.scaling_layer(y))
        dist = x.new_zeros(x.shape[0])
        for k in range(self.num_layers):
            diff = (self._unit(fx[k]) - self._unit(fy[k])) ** 2
            dist = dist + getattr(self, f"lin{k}")(diff).mean(dim=(1, 2, 3))
        return dist


# --------------------------------------------------------------------------- loss


class PerceptualLoss(nn.Module):
    """Perceptual loss ``loss(fake, real)`` on images in ``[-1, 1]``; returns a scalar.

    ``backend="vgg19"`` (default, as PC-AVS/SPADE): weighted L1 of VGG19
    features, ``weights_path`` = torchvision's ``vgg19-dcbb9e9d.pth`` (``None``:
    torch hub cache). ``backend="stlpips"``: mean ST-LPIPS distance
    (``stlpips_net`` "vgg" or "alex"; ``weights_path`` overrides the file from
    the installed package). ``backend="none"``: zero. ``pretrained=False``
    leaves the VGG19 randomly initialised (tests/benchmarks only). Inputs smaller than the
    backbone's minimum side are bilinearly upscaled first. The real image is
    the target and gets no gradient.
    """

    def __init__(
        self,
        backend: Backend = "vgg19",
        weights_path: str | Path | None = None,
        stlpips_net: Literal["vgg", "alex"] = "vgg",
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        self.backend = backend
        self.vgg: VGG19Features | None = None
        self.stlpips: StLPIPS | None = None
        if backend == "vgg19":
            self.vgg = VGG19Features()
            # pretrained=False is for tests and benchmarks only: a VGG with random
            # weights is *not* a perceptual metric.
            if pretrained:
                load_vgg19_weights(self.vgg, weights_path)
        elif backend == "stlpips":
            self.stlpips = StLPIPS(stlpips_net, weights_path)
        elif backend != "none":
            raise ValueError(
                f"unknown perceptual backend {backend!r} (expected 'vgg19', 'stlpips' or 'none')"
            )

    def train(self, mode: bool = True) -> PerceptualLoss:
        # The backbones are fixed metrics: keep them in eval mode whatever the trainer does.
        super().train(mode)
        for m in (self.vgg, self.stlpips):
            if m is not None:
                m.eval()
        return self

    def forward(self, fake: Tensor, real: Tensor) -> Tensor:
        """Perceptual distance between ``fake`` and the (detached) target ``real``."""
        if fake.shape != real.shape:
            raise ValueError(f"fake {tuple(fake.shape)} and real {tuple(real.shape)} differ in shape")
        if self.backend == "none":
            return fake.new_zeros(())
        min_size = _MIN_SIZE[self.backend]
        fake = _upsize(fake, min_size)
        real = _upsize(real.detach(), min_size)
        if self.vgg is not None:
            with torch.no_grad():
                feats_real = self.vgg(real)
            feats_fake = self.vgg(fake)
            loss = fake.new_zeros(())
            for w, f, r in zip(VGG_LAYER_WEIGHTS, feats_fake, feats_real, strict=True):
                loss = loss + w * F.l1_loss(f, r)
            return loss
        assert self.stlpips is not None
        return self.stlpips(fake, real).mean()
