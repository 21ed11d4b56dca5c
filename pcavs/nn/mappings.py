"""E: the non-identity FAN plus its mappings into the pose and speech-content spaces.

``latest_net_E`` stores the FAN under ``model`` and these heads beside it:
``to_mouth`` (visual speech content), ``mouth_embed`` (content -> the generator's mouth style),
``to_headpose`` and ``headpose_embed`` (-> the 12-dim pose code), and training classifiers.
"""

from __future__ import annotations

from torch import Tensor, nn

from pcavs.config import MappingConfig, NonIdentityEncoderConfig
from pcavs.nn.nonidentity import FAN


def _mlp(dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))


class NonIdentityEncoder(nn.Module):
    """Frames -> non-identity feature; mappings to pose code and mouth style."""

    def __init__(self, enc: NonIdentityEncoderConfig, cfg: MappingConfig, image_size: int) -> None:
        super().__init__()
        d, p = enc.feature_dim, cfg.pose_dim
        self.model = FAN(enc, image_size)
        self.classifier = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, cfg.num_classes))
        self.to_mouth = _mlp(d)
        self.mouth_embed = nn.Sequential(nn.ReLU(), nn.Linear(d, d - p))
        self.mouth_fc = nn.Sequential(nn.ReLU(), nn.Linear(d * cfg.clip_len, cfg.num_classes))
        self.to_headpose = _mlp(d)
        self.headpose_embed = nn.Sequential(nn.ReLU(), nn.Linear(d, p))
        self.headpose_fc = nn.Sequential(nn.ReLU(), nn.Linear(p * cfg.clip_len, cfg.num_classes))

    def forward(self, frames: Tensor) -> Tensor:
        """Frames (B, 3, S, S) in [-1, 1] -> non-identity feature (B, feature_dim)."""
        return self.model(frames)

    def pose_feature(self, nonidentity: Tensor) -> Tensor:
        return self.to_headpose(nonidentity)

    def pose_code(self, nonidentity: Tensor) -> Tensor:
        """The pose code (B, pose_dim) that goes into the generator's style."""
        return self.headpose_embed(self.to_headpose(nonidentity))

    def visual_content(self, nonidentity: Tensor) -> Tensor:
        """Speech content seen on the face; trained to share a space with the audio feature."""
        return self.to_mouth(nonidentity)

    def mouth_style(self, content: Tensor) -> Tensor:
        """Speech content (audio or visual) -> the mouth part of the style (B, feature_dim - pose_dim)."""
        return self.mouth_embed(content)
