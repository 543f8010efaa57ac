"""Incremental clustering: new faces join existing clusters without regrouping the old ones.

A new face takes the cluster with the most weight among its old neighbours closer than the
threshold (the same votes as Chinese whispers); faces with no such neighbour are grouped
among themselves and become new clusters. Old faces keep their cluster ids.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fnet.clustering.knn import nearest
from fnet.clustering.methods import ClusterSettings, cluster


def assign(
    old: np.ndarray, old_labels: np.ndarray, new: np.ndarray, settings: ClusterSettings = ClusterSettings(), on_progress=None
) -> np.ndarray:
    """Cluster ids for the new faces: existing ids where they join a cluster, fresh ones (after the largest) otherwise."""
    labels = np.full(len(new), -1, np.int64)
    if len(new) == 0:
        return labels
    if len(old):
        distances, rows = nearest(old, new, min(settings.k, len(old)), on_progress=on_progress)
        close = (rows >= 0) & (distances < settings.threshold)
        face, slot = np.nonzero(close)
        if len(face):
            cluster_id = old_labels[rows[face, slot]]
            weight = (1.0 - distances[face, slot] / settings.threshold) ** 2
            pairs, inverse = np.unique(np.stack([face, cluster_id], axis=1), axis=0, return_inverse=True)
            score = np.bincount(inverse.ravel(), weights=weight)
            best = np.lexsort((-score, pairs[:, 0]))  # per face, highest score first
            first = best[np.r_[True, pairs[best[1:], 0] != pairs[best[:-1], 0]]]
            labels[pairs[first, 0]] = pairs[first, 1]
    alone = np.flatnonzero(labels < 0)
    if len(alone):
        fresh = cluster(new[alone], dataclasses.replace(settings, n_clusters=min(settings.n_clusters, len(alone))))
        labels[alone] = fresh + (int(old_labels.max()) + 1 if len(old_labels) else 0)
    return labels
