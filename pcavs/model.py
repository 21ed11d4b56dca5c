"""PC-AVS composed from its networks: encode identity, pose and speech, then generate.

The five networks keep the official names (``G``, ``V``, ``E``, ``A_sync``, and ``D`` for
training), so each one's state_dict is exactly a file of the released checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pcavs.config import ModelConfig
from pcavs.nn.audio import AudioEncoder
from pcavs.nn.discriminator import MultiscaleDiscriminator
from pcavs.nn.generator import Generator, Generators, NoiseMode
from pcavs.nn.identity import IdentityEncoder
from pcavs.nn.mappings import NonIdentityEncoder

INFERENCE_NETWORKS = ("G", "V", "E", "A_sync")


@dataclass
class IdentityCode:
    """What the generator needs from the identity photo, computed once per video."""

    vector: Tensor  # (B, id_dim): first part of the style
    map: Tensor  # (B, C, s, s): the generator's input


class PCAVS(nn.Module):
    """The generator and its encoders. ``with_discriminator`` adds ``D`` for training."""

    def __init__(self, cfg: ModelConfig, with_discriminator: bool = False) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.V = IdentityEncoder(cfg.identity, map_size=cfg.generator.init_size)
        self.E = NonIdentityEncoder(cfg.nonidentity, cfg.mapping, cfg.image_size)
        self.A_sync = AudioEncoder(cfg.audio)
        self.G = Generator(cfg.generator, cfg.style_dim)
        if with_discriminator:
            self.D = MultiscaleDiscriminator(cfg.discriminator)

    def networks(self) -> dict[str, nn.Module]:
        names = INFERENCE_NETWORKS + (("D",) if hasattr(self, "D") else ())
        return {n: getattr(self, n) for n in names}

    # --- encoders -------------------------------------------------------------------------
    def encode_identity(self, images: Tensor) -> IdentityCode:
        """Reference frames (N, 3, S, S) -> one identity code, averaged over the N frames."""
        vector, identity_map = self.V(images)
        return IdentityCode(vector.mean(0, keepdim=True), identity_map.mean(0, keepdim=True))

    def encode_pose(self, frames: Tensor) -> Tensor:
        """Pose-source frames (B, 3, S, S) -> pose codes (B, pose_dim)."""
        if frames.device.type != "cpu":
            return self.E.pose_code(self.E(frames))
        # on a CPU the FAN runs ~20% faster channels-last (224: 88 vs 106 ms/frame), and in chunks
        # of 8 its hourglass activations stay small enough for the caches
        frames = frames.contiguous(memory_format=torch.channels_last)
        return torch.cat([self.E.pose_code(self.E(part)) for part in frames.split(8)])

    def encode_audio(self, mel_windows: Tensor) -> Tensor:
        """Mel windows (B, 1, n_mels, 20) -> speech-content features (B, feature_dim)."""
        return self.A_sync(mel_windows)

    def mouth_style(self, content: Tensor, weight: float | None = None) -> Tensor:
        """Speech content -> the mouth part of the style; ``weight`` defaults to the config's 1.2."""
        w = self.cfg.mouth_weight if weight is None else weight
        return self.E.mouth_style(content * w)

    # --- generator ------------------------------------------------------------------------
    def style(self, identity: IdentityCode, mouth: Tensor, pose: Tensor) -> Tensor:
        """Identity vector | mouth style | pose code, broadcasting the identity over the batch."""
        vec = identity.vector.expand(mouth.shape[0], -1)
        return torch.cat([vec, mouth, pose], dim=1)

    def generate(
        self,
        identity: IdentityCode,
        mouth: Tensor,
        pose: Tensor,
        noise: NoiseMode = "random",
        generator: Generators = None,
        chunk: int | None = None,
    ) -> Tensor:
        """Frames (B, 3, S, S) in [-1, 1] for mouth styles (B, mouth_dim) and pose codes (B, pose_dim).

        ``chunk`` frames go through the generator per call (None: all B at once). On a CPU one at a
        time is fastest (see :func:`generator_chunk`); the output is the same up to rounding.
        """
        style = self.style(identity, mouth, pose)
        id_map = identity.map.expand(style.shape[0], -1, -1, -1)
        if chunk is None or chunk >= style.shape[0]:
            return self.G(style, id_map, noise=noise, generator=generator)
        if isinstance(generator, Sequence):  # one per frame: split along with the frames
            gens: list[Generators] = [generator[i : i + chunk] for i in range(0, len(generator), chunk)]
        else:
            gens = [generator] * len(range(0, style.shape[0], chunk))
        parts = zip(style.split(chunk), id_map.split(chunk), gens, strict=True)
        return torch.cat([self.G(s, m, noise=noise, generator=g) for s, m, g in parts])

    def forward(
        self, identity_images: Tensor, mel_windows: Tensor, pose_frames: Tensor, noise: NoiseMode = "random"
    ) -> Tensor:
        """One-shot driven generation: identity from the reference, lips from audio, pose from frames."""
        identity = self.encode_identity(identity_images)
        mouth = self.mouth_style(self.encode_audio(mel_windows))
        return self.generate(identity, mouth, self.encode_pose(pose_frames), noise=noise)


def generator_chunk(device: torch.device | str, image_size: int) -> int | None:
    """Frames per generator call for inference on ``device`` (None: the whole batch at once).

    On a CPU at 128 px and up, one frame per call is fastest at every batch size: the style then
    scales the small weights rather than the large activations, and one frame's activations stay in
    cache (official preset, 2 cores, batch 8: 645 ms/frame one at a time vs 1104 ms as one call).
    Small images and GPUs want the whole batch (``small`` preset, batch 8: 6.7 vs 10.7 ms/frame).
    """
    return 1 if torch.device(device).type == "cpu" and image_size >= 128 else None


def parameter_counts(model: PCAVS) -> dict[str, int]:
    return {name: sum(p.numel() for p in net.parameters()) for name, net in model.networks().items()}
