"""VGG19 feature extractor for the perceptual loss, in pure PyTorch.

The module layout mirrors torchvision's ``vgg19().features`` so that the
state_dict keys are identical (``features.0.weight`` ... ``features.34.bias``)
and torchvision's published ImageNet checkpoint ``vgg19-dcbb9e9d.pth`` loads
strictly (its ``classifier.*`` keys are dropped on purpose: only the
convolutional trunk is used). Nothing is ever downloaded: the file must
already be on disk.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
from torch import Tensor

VGG19_FILENAME = "vgg19-dcbb9e9d.pth"
VGG19_URL = f"https://download.pytorch.org/models/{VGG19_FILENAME}"

# torchvision's configuration "E": channel counts, "M" = 2x2 max-pool.
_VGG19_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
    512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)  # fmt: skip

# End indices (exclusive) in ``features`` of SPADE's five slices:
# relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.
VGG19_SLICE_ENDS: tuple[int, ...] = (2, 7, 12, 21, 30)

# ImageNet statistics the torchvision checkpoint was trained with (RGB, [0, 1] input).
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def default_vgg19_path() -> Path:
    """Where torchvision would cache the checkpoint: ``<torch hub dir>/checkpoints/vgg19-dcbb9e9d.pth``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILENAME


def _make_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    in_ch = 3
    for v in _VGG19_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            assert isinstance(v, int)
            layers.append(nn.Conv2d(in_ch, v, kernel_size=3, padding=1))
            # Not in-place: slice outputs are returned and must not be overwritten.
            layers.append(nn.ReLU(inplace=False))
            in_ch = v
    return nn.Sequential(*layers)


class VGG19Features(nn.Module):
    """VGG19 convolutional trunk returning SPADE's five ReLU slices.

    Input: images ``(N, 3, H, W)`` in ``[-1, 1]`` (the generator's range); they
    are mapped to ``[0, 1]`` and ImageNet-normalised before the first conv.
    Output: ``[relu1_1, relu2_1, relu3_1, relu4_1, relu5_1]``. Needs
    ``H, W >= 16`` (four 2x2 pools precede relu5_1).

    A fresh instance has random weights; use :meth:`from_pretrained` or
    :func:`load_vgg19_weights` for the ImageNet ones. Parameters are frozen
    (``requires_grad=False``) because the network is only a fixed feature
    metric; gradients still flow to the *input*.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = _make_features()
        # Non-persistent: the state_dict must hold exactly torchvision's keys.
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_pretrained(cls, weights_path: str | Path | None = None) -> VGG19Features:
        """Build and load torchvision's ImageNet weights (see :func:`load_vgg19_weights`)."""
        model = cls()
        load_vgg19_weights(model, weights_path)
        return model

    def forward(self, x: Tensor) -> list[Tensor]:
        """Return the five relu slices for ``x`` in ``[-1, 1]``."""
        h = ((x + 1.0) * 0.5 - self.mean) / self.std
        outs: list[Tensor] = []
        start = 0
        for end in VGG19_SLICE_ENDS:
            for i in range(start, end):
                h = self.features[i](h)
            outs.append(h)
            start = end
        return outs


def load_vgg19_weights(model: VGG19Features, weights_path: str | Path | None = None) -> VGG19Features:
    """Load torchvision's ``vgg19-dcbb9e9d.pth`` into ``model`` (strictly, ``classifier.*`` ignored).

    ``weights_path=None`` looks in the torch hub cache
    (:func:`default_vgg19_path`). The file is read with
    ``torch.load(weights_only=True)``; it is never downloaded.
    """
    path = Path(weights_path) if weights_path is not None else default_vgg19_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"VGG19 ImageNet weights not found at {path}. The VGG perceptual loss needs torchvision's "
            f"checkpoint {VGG19_FILENAME}: download it from {VGG19_URL} to {default_vgg19_path()} "
            f"(or pass its path as weights_path), or choose perceptual='stlpips' (weights ship with "
            f"`pip install stlpips-pytorch`) or perceptual='none'."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state_dict (got {type(state).__name__})")
    # The classifier head is not part of the feature trunk; drop it explicitly so
    # that every remaining key must match (strict load catches a wrong file).
    state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    model.load_state_dict(state, strict=True)
    return model
