"""Identity classification loss (softmax cross-entropy, paper's L_i)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _labels(labels: Tensor, n: int) -> Tensor:
    # Datasets often yield (N, 1) labels (the released code's torch.zeros(1) per item).
    labels = labels.reshape(-1).long()
    if labels.shape[0] != n:
        raise ValueError(f"{labels.shape[0]} labels for {n} logit rows")
    return labels


def identity_loss(logits: Tensor, labels: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of identity ``logits`` ``(N, C)`` against integer ``labels`` ``(N,)``."""
    if logits.ndim != 2:
        raise ValueError(f"logits must be (N, C), got {tuple(logits.shape)}")
    return F.cross_entropy(logits, _labels(labels, logits.shape[0]), label_smoothing=label_smoothing)


@torch.no_grad()
def identity_accuracy(logits: Tensor, labels: Tensor) -> float:
    """Top-1 identity classification accuracy (for logs)."""
    return float((logits.argmax(dim=1) == _labels(labels, logits.shape[0])).float().mean())
