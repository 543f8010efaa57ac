"""The triplet loss of FaceNet (eq. 2): hinge on squared L2 distances of unit embeddings,
L = mean over triplets of max(0, ||f(a) - f(p)||^2 - ||f(a) - f(n)||^2 + alpha)."""

from __future__ import annotations

import torch


def pairwise_squared_distances(embeddings: torch.Tensor, others: torch.Tensor | None = None) -> torch.Tensor:
    """(N, M) squared L2 distances, by one matrix product (clamped at 0 against rounding)."""
    others = embeddings if others is None else others
    squared = (embeddings * embeddings).sum(1, keepdim=True) + (others * others).sum(1) - 2.0 * embeddings @ others.T
    return squared.clamp_min(0.0)


def triplet_loss(embeddings: torch.Tensor, triplets: torch.Tensor, margin: float = 0.2) -> torch.Tensor:
    """Mean hinge loss of the (T, 3) anchor / positive / negative row indices; 0 when there are none."""
    if len(triplets) == 0:
        return embeddings.sum() * 0.0  # keeps the graph (and DDP's gradient hooks) connected
    a, p, n = (embeddings[triplets[:, i]] for i in range(3))
    return ((a - p).pow(2).sum(1) - (a - n).pow(2).sum(1) + margin).clamp_min(0.0).mean()
