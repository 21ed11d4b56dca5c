"""Typed model configuration: named presets, ``key=value`` overrides, JSON round trip.

Every network is built from one of these dataclasses; nothing reads a global options object.
``official`` reproduces the released PC-AVS checkpoint exactly (same state_dict keys and shapes);
the smaller presets keep the same topology with narrow channels for tests and CPU training.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pcavs.errors import UserError


class ConfigError(UserError, ValueError):
    """A preset name, override or config file that does not describe a valid model."""


@dataclass(frozen=True)
class IdentityEncoderConfig:
    """ResNeXt identity encoder E_i (``latest_net_V``)."""

    stem_channels: int = 64
    planes: tuple[int, ...] = (64, 128, 256, 512)
    blocks: tuple[int, ...] = (3, 4, 6, 3)
    groups: int = 32
    width_per_group: int = 4
    map_channels: int = 512  # the 1x1 conv on layer4: the generator's input channels
    # which stage feeds that 1x1 conv (0: the last, as released). At 64 px the last stage is 2x2,
    # too coarse to carry the photo's appearance into a small generator; stage 1 is 16x16 there
    map_stage: int = 0
    imagenet_classes: int = 1000  # the backbone's own fc, kept so the official file loads strictly
    num_classes: int = 5830  # identity classifier (VoxCeleb2 identities)

    @property
    def feature_dim(self) -> int:
        return self.planes[-1] * 4  # bottleneck expansion

    @property
    def map_source_stage(self) -> int:
        """1-based stage whose output feeds the map (resolves ``map_stage=0`` to the last)."""
        return self.map_stage or len(self.planes)


@dataclass(frozen=True)
class NonIdentityEncoderConfig:
    """Single-hourglass FAN E_n (``latest_net_E.model``)."""

    base_channels: int = 64  # the hourglass runs at 4x this (256 in the official net)
    hourglass_depth: int = 4
    num_landmarks: int = 68
    feature_dim: int = 512
    # channels of conv6, which reads the 68 heatmaps (1 as released). One channel sums all heatmaps
    # into one map: at 64 px (8x8) a linear probe trained 400 steps on the feature recovers 13% of the
    # landmarks' variance through 1 channel, 42% through 16
    head_channels: int = 1


@dataclass(frozen=True)
class MappingConfig:
    """The speech-content and pose mappings that live beside the FAN in ``latest_net_E``."""

    pose_dim: int = 12
    num_classes: int = 5830  # identity / word classifier heads used only in training
    clip_len: int = 1  # frames per clip seen by the mouth/headpose word classifiers


@dataclass(frozen=True)
class AudioEncoderConfig:
    """Half-width SE-ResNet34 with self-attentive pooling (``latest_net_A_sync``)."""

    channels: tuple[int, ...] = (32, 64, 128, 256)
    blocks: tuple[int, ...] = (3, 4, 6, 3)
    se_reduction: int = 8
    n_mels: int = 80
    window: int = 20  # mel rows per video frame window (4 per frame, frames i-2..i+2)
    attention_dim: int = 128
    feature_dim: int = 512  # speech-content feature, shared space with the visual content
    num_classes: int = 5830


@dataclass(frozen=True)
class GeneratorConfig:
    """StyleGAN2-style generator G (``latest_net_G``)."""

    init_size: int = 7  # spatial size of the identity map fed as the generator input
    channels: tuple[int, ...] = (512, 512, 512, 512, 256, 128)  # at init_size * 2**i
    mapping_layers: int = 8  # stored in the official file, never run (style is used as W)
    mapping_lr_mul: float = 0.01
    constant_input: bool = True  # the unused learned constant input, kept for strict loading
    blur_kernel: tuple[int, ...] = (1, 3, 3, 1)

    @property
    def size(self) -> int:
        return self.init_size * 2 ** (len(self.channels) - 1)

    @property
    def num_layers(self) -> int:
        return 2 * (len(self.channels) - 1) + 1


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Multi-scale PatchGAN discriminator (training only)."""

    num_scales: int = 2
    layers: int = 4
    base_channels: int = 64
    max_channels: int = 512
    input_channels: int = 3


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build the five networks."""

    name: str = "official"
    image_size: int = 224
    identity: IdentityEncoderConfig = field(default_factory=IdentityEncoderConfig)
    nonidentity: NonIdentityEncoderConfig = field(default_factory=NonIdentityEncoderConfig)
    mapping: MappingConfig = field(default_factory=MappingConfig)
    audio: AudioEncoderConfig = field(default_factory=AudioEncoderConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    mouth_weight: float = 1.2  # the official inference scales the audio feature by this

    @property
    def mouth_dim(self) -> int:
        return self.nonidentity.feature_dim - self.mapping.pose_dim

    @property
    def style_dim(self) -> int:
        """Identity vector | mouth embedding | pose code (2048 + 500 + 12 = 2560 officially)."""
        return self.identity.feature_dim + self.mouth_dim + self.mapping.pose_dim

    def validate(self) -> ModelConfig:
        if self.generator.size != self.image_size:
            raise ConfigError(
                f"generator output size {self.generator.size} (init_size {self.generator.init_size} "
                f"with {len(self.generator.channels)} resolutions) != image_size {self.image_size}"
            )
        if self.image_size % 8:
            raise ConfigError(f"image_size must be a multiple of 8 (the FAN pools 8x), got {self.image_size}")
        if self.nonidentity.feature_dim != self.audio.feature_dim:
            raise ConfigError("audio and visual content features must share one space (same feature_dim)")
        if not 0 <= self.identity.map_stage <= len(self.identity.planes):
            raise ConfigError(
                f"identity.map_stage must be 0 (last) or 1..{len(self.identity.planes)}, got {self.identity.map_stage}"
            )
        if self.audio.n_mels % 8:
            raise ConfigError("n_mels must be a multiple of 8 (three stride-2 stages)")
        if self.nonidentity.head_channels < 1:
            raise ConfigError(f"nonidentity.head_channels must be >= 1, got {self.nonidentity.head_channels}")
        return self


def _official() -> ModelConfig:
    return ModelConfig()


def _small() -> ModelConfig:
    """64x64, narrow channels: the CPU training recipe (about 1/40 of the official compute)."""
    return ModelConfig(
        name="small",
        image_size=64,
        identity=IdentityEncoderConfig(
            stem_channels=32, planes=(32, 64, 128, 128), blocks=(1, 2, 2, 1), groups=8,
            width_per_group=4, map_channels=128, map_stage=1, imagenet_classes=0, num_classes=1000,
        ),
        nonidentity=NonIdentityEncoderConfig(base_channels=16, hourglass_depth=3, feature_dim=256, head_channels=16),
        mapping=MappingConfig(pose_dim=12, num_classes=1000),
        audio=AudioEncoderConfig(
            channels=(16, 32, 64, 128), blocks=(1, 2, 2, 1), attention_dim=64, feature_dim=256,
            num_classes=1000,
        ),
        generator=GeneratorConfig(
            # from a 16x16 map (stage 1) rather than the last stage's 2x2: the photo's appearance
            # reaches the generator, which at 4x4 learned only blobs in the CPU budget. With the mouth
            # term on, from 8x8 (stage 2) the joint stage's L1 was 0.57 at step 110, from 16x16 0.16
            init_size=16, channels=(128, 64, 32), mapping_layers=0, constant_input=False,
        ),
        discriminator=DiscriminatorConfig(base_channels=32, max_channels=128),
    )


def _tiny() -> ModelConfig:
    """32x32, a few thousand parameters per network: unit tests."""
    return ModelConfig(
        name="tiny",
        image_size=32,
        identity=IdentityEncoderConfig(
            stem_channels=8, planes=(8, 8, 16, 16), blocks=(1, 1, 1, 1), groups=2,
            width_per_group=32, map_channels=16, imagenet_classes=0, num_classes=10,
        ),
        nonidentity=NonIdentityEncoderConfig(base_channels=4, hourglass_depth=2, feature_dim=32),
        mapping=MappingConfig(pose_dim=4, num_classes=10),
        audio=AudioEncoderConfig(
            channels=(8, 8, 8, 8), blocks=(1, 1, 1, 1), se_reduction=2, attention_dim=8, feature_dim=32,
            num_classes=10,
        ),
        generator=GeneratorConfig(init_size=4, channels=(16, 16, 8, 8), mapping_layers=0, constant_input=False),
        discriminator=DiscriminatorConfig(layers=3, base_channels=8, max_channels=16),
    )


PRESETS = {"official": _official, "small": _small, "tiny": _tiny}


def preset(name: str, overrides: Iterable[str] | Mapping[str, Any] = ()) -> ModelConfig:
    """Build a named preset, then apply ``key=value`` overrides (dotted keys reach nested fields)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return apply_overrides(PRESETS[name](), overrides)


def apply_overrides(cfg: Any, overrides: Iterable[str] | Mapping[str, Any]) -> Any:
    """Return a copy of dataclass ``cfg`` with ``a.b=value`` overrides applied (values parsed as JSON)."""
    if isinstance(overrides, Mapping):
        items = list(overrides.items())
    else:
        items = []
        for text in overrides:
            if "=" not in text:
                raise ConfigError(f"override {text!r} is not of the form key=value")
            key, raw = text.split("=", 1)
            items.append((key.strip(), _parse_value(raw.strip())))
    for key, value in items:
        cfg = _set_path(cfg, key.split("."), value, key)
    if hasattr(cfg, "validate"):
        cfg = cfg.validate()
    return cfg


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw  # bare strings need no quotes on the command line


def _set_path(obj: Any, path: list[str], value: Any, full_key: str) -> Any:
    names = {f.name for f in dataclasses.fields(obj)}
    head = path[0]
    if head not in names:
        raise ConfigError(f"unknown config key {full_key!r}: {type(obj).__name__} has {', '.join(sorted(names))}")
    current = getattr(obj, head)
    if len(path) > 1:
        if not dataclasses.is_dataclass(current):
            raise ConfigError(f"config key {full_key!r}: {head!r} has no sub-keys")
        return dataclasses.replace(obj, **{head: _set_path(current, path[1:], value, full_key)})
    hint = typing.get_type_hints(type(obj))[head]
    return dataclasses.replace(obj, **{head: _coerce(value, hint, full_key)})


def _coerce(value: Any, hint: Any, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value)
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config key {key!r} expects a list, got {value!r}")
        (inner, *_rest) = typing.get_args(hint)
        return tuple(_coerce(v, inner, key) for v in value)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and not isinstance(value, hint):
        raise ConfigError(f"config key {key!r} expects {hint.__name__}, got {value!r}")
    return value


def to_dict(cfg: Any) -> dict[str, Any]:
    """JSON-ready dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """Inverse of :func:`to_dict`; unknown keys are an error so stale files are noticed."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"unknown keys for {cls.__name__}: {', '.join(sorted(unknown))}")
    kwargs = {k: _coerce(v, hints[k], k) for k, v in data.items()}
    obj = cls(**kwargs)
    return obj.validate() if hasattr(obj, "validate") else obj
