"""Audio-visual contrastive synchronisation loss (PC-AVS paper, eq. 1-2).

Paper (Sec. 2.2, "Learning Speech Content Space"): timely aligned visual and
audio content features are positive pairs; ``N^-`` negative audio features
come "from other videos or from the same recording with a time-shift". The
similarity is the cosine ``D(F1, F2) = F1^T F2 / (|F1| |F2|)`` and the loss is
an ``(N^- + 1)``-way softmax classification, with *no* temperature:

    L_c^{v2a} = -log[ exp(D(v, a)) / (exp(D(v, a)) + sum_j exp(D(v, a_j^-))) ]   (1)
    L_c = L_c^{v2a} + L_c^{a2v}                                                   (2)

So the paper's temperature is 1, which is our default (``temperature=1.0``).
Note that with cosine logits in [-1, 1] and tau = 1 the softmax is soft: the
loss cannot go below ``log(1 + (N-1) e^-2)``; lower temperatures (e.g. 0.1)
sharpen it, as is usual in InfoNCE.

The released code differs from the paper: its ``SoftmaxContrastiveLoss`` uses
logits ``1 / ||v/|v| - a/|a| ||_2`` (inverse Euclidean distance of
L2-normalised features) with in-batch negatives, detaches the anchor side in
each direction (v2a updates only the audio branch, a2v only the visual one)
and sums both directions, each weighted ``lambda_contrastive = 100``.
``similarity="inverse_l2"``, ``detach_anchor=True`` and ``combine="sum"``
reproduce that exactly.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

Similarity = Literal["cosine", "inverse_l2"]

# Floor on the L2 distance for the inverse-distance logits: identical unit
# vectors would otherwise give an infinite logit (and NaN gradients).
_MIN_DIST = 1e-4


def _check(anchor: Tensor, others: Tensor, extra: Tensor | None) -> None:
    if anchor.ndim != 2 or others.ndim != 2 or anchor.shape != others.shape:
        raise ValueError(
            f"expected two (N, D) tensors of equal shape, got {tuple(anchor.shape)} and {tuple(others.shape)}"
        )
    if extra is not None and (
        extra.ndim != 3 or extra.shape[0] != anchor.shape[0] or extra.shape[2] != anchor.shape[1]
    ):
        raise ValueError(
            f"extra negatives must be (N, K, D) = ({anchor.shape[0]}, K, {anchor.shape[1]}), "
            f"got {tuple(extra.shape)}"
        )


def sync_similarity(
    anchor: Tensor,
    others: Tensor,
    extra_negatives: Tensor | None = None,
    similarity: Similarity = "cosine",
) -> Tensor:
    """Similarity logits of each anchor row against all rows of ``others`` (+ its extra negatives).

    ``anchor``, ``others``: ``(N, D)``, row ``i`` of each is a positive pair.
    ``extra_negatives``: optional ``(N, K, D)``, the K additional negatives of
    anchor ``i`` (e.g. time-shifted windows of the same clip). Returns
    ``(N, N + K)``: column ``i`` of row ``i`` is the positive.
    """
    _check(anchor, others, extra_negatives)
    a = F.normalize(anchor, dim=-1)
    o = F.normalize(others, dim=-1)
    if similarity == "cosine":
        sim = a @ o.t()
        if extra_negatives is not None:
            sim_extra = torch.einsum("nd,nkd->nk", a, F.normalize(extra_negatives, dim=-1))
            sim = torch.cat([sim, sim_extra], dim=1)
        return sim
    if similarity == "inverse_l2":
        # Exact pairwise distances: the matmul shortcut loses precision near 0.
        dist = torch.cdist(a, o, compute_mode="donot_use_mm_for_euclid_dist")
        if extra_negatives is not None:
            e = F.normalize(extra_negatives, dim=-1)
            dist = torch.cat([dist, torch.linalg.vector_norm(a[:, None, :] - e, dim=-1)], dim=1)
        return 1.0 / dist.clamp_min(_MIN_DIST)
    raise ValueError(f"unknown similarity {similarity!r} (expected 'cosine' or 'inverse_l2')")


def _direction_loss(
    anchor: Tensor, others: Tensor, extra: Tensor | None, temperature: float, similarity: Similarity
) -> Tensor:
    logits = sync_similarity(anchor, others, extra, similarity) / temperature
    target = torch.arange(anchor.shape[0], device=anchor.device)
    return F.cross_entropy(logits, target)


def contrastive_sync_terms(
    a: Tensor,
    v: Tensor,
    extra_neg_a: Tensor | None = None,
    extra_neg_v: Tensor | None = None,
    *,
    temperature: float = 1.0,
    similarity: Similarity = "cosine",
    detach_anchor: bool = False,
) -> tuple[Tensor, Tensor]:
    """The two directions ``(L_v2a, L_a2v)`` of the contrastive sync loss.

    ``a`` (audio) and ``v`` (visual content) are ``(N, D)`` with row ``i`` a
    positive pair; the other rows are the negatives. ``extra_neg_a``
    ``(N, K, D)`` adds audio negatives for visual anchor ``i`` (v2a);
    ``extra_neg_v`` adds visual negatives for audio anchor ``i`` (a2v).
    ``L_v2a = mean_i -log softmax_j(D(v_i, a_j) / temperature)[i]``.
    ``detach_anchor=True`` stops the gradient through the anchor of each
    direction, as the released code does.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if a.shape[0] < 2 and extra_neg_a is None and extra_neg_v is None:
        raise ValueError("the contrastive loss needs at least 2 rows (or extra negatives)")
    v_anchor = v.detach() if detach_anchor else v
    a_anchor = a.detach() if detach_anchor else a
    loss_v2a = _direction_loss(v_anchor, a, extra_neg_a, temperature, similarity)
    loss_a2v = _direction_loss(a_anchor, v, extra_neg_v, temperature, similarity)
    return loss_v2a, loss_a2v


def contrastive_sync_loss(
    a: Tensor,
    v: Tensor,
    extra_neg_a: Tensor | None = None,
    extra_neg_v: Tensor | None = None,
    *,
    temperature: float = 1.0,
    similarity: Similarity = "cosine",
    detach_anchor: bool = False,
    combine: Literal["mean", "sum"] = "mean",
) -> Tensor:
    """Symmetric contrastive sync loss: ``mean`` (default) or ``sum`` of v2a and a2v.

    Defaults follow the paper's eq. 1 (cosine similarity, temperature 1); the
    paper's eq. 2 and the released code *sum* the two directions
    (``combine="sum"``), which doubles the effective weight relative to the
    default mean. See :func:`contrastive_sync_terms` for the arguments.
    """
    loss_v2a, loss_a2v = contrastive_sync_terms(
        a, v, extra_neg_a, extra_neg_v,
        temperature=temperature, similarity=similarity, detach_anchor=detach_anchor,
    )  # fmt: skip
    if combine == "mean":
        return 0.5 * (loss_v2a + loss_a2v)
    if combine == "sum":
        return loss_v2a + loss_a2v
    raise ValueError(f"unknown combine {combine!r} (expected 'mean' or 'sum')")


@torch.no_grad()
def sync_accuracy(
    a: Tensor,
    v: Tensor,
    extra_neg_a: Tensor | None = None,
    extra_neg_v: Tensor | None = None,
    *,
    direction: Literal["v2a", "a2v", "both"] = "both",
    similarity: Similarity = "cosine",
) -> float:
    """Fraction of rows whose positive has the highest similarity (retrieval top-1).

    ``direction="both"`` averages the v2a and a2v accuracies. Chance level is
    ``1 / (N + K)``. A tie between the positive and a negative counts as a hit.
    """
    accs = []
    if direction in ("v2a", "both"):
        accs.append(_top1(sync_similarity(v, a, extra_neg_a, similarity)))
    if direction in ("a2v", "both"):
        accs.append(_top1(sync_similarity(a, v, extra_neg_v, similarity)))
    if not accs:
        raise ValueError(f"unknown direction {direction!r}")
    return sum(accs) / len(accs)


def _top1(sim: Tensor) -> float:
    n = sim.shape[0]
    idx = torch.arange(n, device=sim.device)
    pos = sim[idx, idx]
    # A row is correct when no other column beats its positive.
    others = sim.clone()
    others[idx, idx] = float("-inf")
    return float((pos >= others.max(dim=1).values).float().mean())


@torch.no_grad()
def sync_margin(
    a: Tensor,
    v: Tensor,
    extra_neg_a: Tensor | None = None,
    *,
    similarity: Similarity = "cosine",
) -> float:
    """Mean over visual anchors of ``sim(positive) - max sim(negatives)`` (v2a).

    A confidence-like score in the spirit of SyncNet's ``Sync_conf`` (which is
    a distance margin over temporal offsets and is computed by the eval code,
    not here): positive when the positive is retrieved, larger is better.
    """
    sim = sync_similarity(v, a, extra_neg_a, similarity)
    n = sim.shape[0]
    idx = torch.arange(n, device=sim.device)
    pos = sim[idx, idx]
    others = sim.clone()
    others[idx, idx] = float("-inf")
    return float((pos - others.max(dim=1).values).mean())
