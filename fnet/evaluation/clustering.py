"""Clustering quality against true identities: pairwise and BCubed precision / recall / F.

Both come from the contingency table (true class x predicted cluster), so a million faces
cost one sort. Pairwise counts pairs of faces put together; BCubed averages, per face, how
pure its cluster is and how much of its class it holds (Amigo et al., 2009).
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Scores:
    precision: float
    recall: float

    @property
    def f(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _contingency(true, predicted) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cell sizes, their class sizes, their cluster sizes), one entry per non-empty cell."""
    _, t = np.unique(np.asarray(true), return_inverse=True)
    _, p = np.unique(np.asarray(predicted), return_inverse=True)
    if len(t) == 0:
        raise ValueError("no faces to score")
    cells, cell_of = np.unique(t.astype(np.int64) * (p.max() + 1) + p, return_inverse=True)
    n = np.bincount(cell_of).astype(np.float64)
    class_size = np.bincount(t).astype(np.float64)[cells // (p.max() + 1)]
    cluster_size = np.bincount(p).astype(np.float64)[cells % (p.max() + 1)]
    return n, class_size, cluster_size


def pairwise_scores(true, predicted) -> Scores:
    """Precision: of the face pairs put in one cluster, the share of one person; recall: of
    one person's pairs, the share put in one cluster. 1.0 where there are no pairs to judge."""
    n = _contingency(true, predicted)[0]
    together = float((n * (n - 1) / 2).sum())
    predicted_pairs = _pairs_per_group(predicted)
    true_pairs = _pairs_per_group(true)
    return Scores(together / predicted_pairs if predicted_pairs else 1.0, together / true_pairs if true_pairs else 1.0)


def _pairs_per_group(labels) -> float:
    sizes = np.unique(np.asarray(labels), return_counts=True)[1].astype(np.float64)
    return float((sizes * (sizes - 1) / 2).sum())


def bcubed_scores(true, predicted) -> Scores:
    n, class_size, cluster_size = _contingency(true, predicted)
    total = n.sum()
    return Scores(float((n * n / cluster_size).sum() / total), float((n * n / class_size).sum() / total))
