"""Cross-modal L1 between audio and visual speech-content (mouth) embeddings.

The released PC-AVS code adds ``L1(visual_mouth.detach(), audio_mouth)``
(``CrossModal``, ``lambda_crossmodal = 1``) next to the contrastive loss: it
pulls the audio embedding of a frame onto the visual one, while the visual
branch is trained by the contrastive and reconstruction losses only.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def crossmodal_l1_loss(audio_emb: Tensor, visual_emb: Tensor, detach_visual: bool = True) -> Tensor:
    """Mean absolute difference between audio and visual content embeddings.

    Both are ``(N, ...)`` with matching shapes (flattened per row as in the
    released code). ``detach_visual=True`` (released behaviour) makes the
    visual embedding the target, so only the audio branch receives gradient.
    """
    if audio_emb.shape[0] != visual_emb.shape[0]:
        raise ValueError(f"batch sizes differ: {audio_emb.shape[0]} vs {visual_emb.shape[0]}")
    a = audio_emb.reshape(audio_emb.shape[0], -1)
    v = visual_emb.reshape(visual_emb.shape[0], -1)
    if a.shape != v.shape:
        raise ValueError(f"embedding sizes differ: {tuple(audio_emb.shape)} vs {tuple(visual_emb.shape)}")
    if detach_visual:
        v = v.detach()
    return F.l1_loss(a, v)
