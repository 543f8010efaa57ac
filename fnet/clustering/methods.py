"""The clustering methods, each embeddings -> one integer label per face.

`whispers` (default) and `components` group the FAISS k-NN graph's edges shorter than
the threshold and scale to millions of faces; `agglomerative` (average linkage), `kmeans`
(k given) and `hdbscan` are the classic ones, for collections that fit a distance matrix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from fnet.clustering.graph import chinese_whispers, connected_components
from fnet.clustering.knn import graph_edges, knn_graph
from fnet.errors import FnetError

DENSE_MAX_ROWS = 30_000  # agglomerative / HDBSCAN hold an N x N distance matrix
KMEANS_RESTARTS = 10  # as scikit-learn's n_init: one k-means++ start finds the best grouping only now and then


@dataclasses.dataclass(frozen=True)
class ClusterSettings:
    method: str = "whispers"
    threshold: float = 1.24  # squared L2: faces closer than this may be one person
    k: int = 50  # neighbours per face in the graph
    n_clusters: int = 0  # k-means only
    min_size: int = 2  # HDBSCAN's smallest cluster
    seed: int = 0


class ClusterError(FnetError, ValueError):
    """Settings or data a method cannot work with."""


def _graph(x: np.ndarray, s: ClusterSettings, on_progress):
    return graph_edges(*knn_graph(x, s.k, on_progress=on_progress), s.threshold)


def whispers(x: np.ndarray, s: ClusterSettings, on_progress=None) -> np.ndarray:
    source, target, distance = _graph(x, s, on_progress)
    # closer neighbours vote louder, an edge near the threshold hardly at all: on LFW (bench/cluster.py)
    # squared weights kept big clusters whole without bridging people, where equal weights merged them
    return chinese_whispers(len(x), source, target, (1.0 - distance / s.threshold) ** 2, seed=s.seed)


def components(x: np.ndarray, s: ClusterSettings, on_progress=None) -> np.ndarray:
    source, target, _ = _graph(x, s, on_progress)
    return connected_components(len(x), source, target)


def _dense_check(x: np.ndarray, name: str) -> None:
    if len(x) > DENSE_MAX_ROWS:
        raise ClusterError(
            f"{name} needs an N x N distance matrix; {len(x):,} faces is over {DENSE_MAX_ROWS:,}: use --method whispers"
        )


def agglomerative(x: np.ndarray, s: ClusterSettings, on_progress=None) -> np.ndarray:
    """Average linkage on squared L2, cut at the threshold (scikit-learn)."""
    from sklearn.cluster import AgglomerativeClustering

    _dense_check(x, "agglomerative")
    if len(x) < 2:
        return np.zeros(len(x), np.int64)
    squared = np.maximum(2.0 - 2.0 * (x @ x.T), 0.0)  # unit vectors: ||a - b||^2 = 2 - 2 a.b
    np.fill_diagonal(squared, 0.0)
    model = AgglomerativeClustering(n_clusters=None, metric="precomputed", linkage="average", distance_threshold=s.threshold)
    return model.fit_predict(squared)


def kmeans(x: np.ndarray, s: ClusterSettings, on_progress=None) -> np.ndarray:
    """Lloyd's k-means (FAISS) from k-means++ seeds: random seeds rarely land on every small
    person, and then a big person is split while two small ones are merged."""
    import faiss

    if not 1 <= s.n_clusters <= len(x):
        raise ClusterError(f"kmeans needs --clusters between 1 and the number of faces ({len(x)}), not {s.n_clusters}")
    rng, best = np.random.default_rng(s.seed), None
    for _ in range(KMEANS_RESTARTS):  # the lowest within-cluster sum of squares wins
        model = faiss.Kmeans(x.shape[1], s.n_clusters, niter=25, seed=s.seed, min_points_per_centroid=1, max_points_per_centroid=256)
        model.train(x, init_centroids=_kmeans_plus_plus(x, s.n_clusters, rng))
        if best is None or model.obj[-1] < best.obj[-1]:
            best = model
    return best.index.search(x, 1)[1][:, 0]


def _kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ (Arthur & Vassilvitskii, 2007, as scikit-learn seeds): of 2 + log k candidates
    drawn with probability ~ squared distance to the nearest seed, keep the one that lowers the total most."""
    sample = x if len(x) <= 256 * k else x[rng.choice(len(x), 256 * k, replace=False)]
    tries = 2 + int(np.log(k))
    seeds = [sample[rng.integers(len(sample))]]
    nearest = ((sample - seeds[0]) ** 2).sum(1)
    for _ in range(1, k):
        p = nearest / nearest.sum() if nearest.sum() > 0 else None
        candidates = sample[rng.choice(len(sample), tries, p=p)]
        squared = (sample * sample).sum(1) + (candidates * candidates).sum(1)[:, None] - 2.0 * candidates @ sample.T
        after = np.minimum(nearest[None], np.maximum(squared, 0.0))
        best = int(after.sum(1).argmin())
        seeds.append(candidates[best])
        nearest = after[best]
    return np.ascontiguousarray(seeds, dtype=np.float32)


def hdbscan(x: np.ndarray, s: ClusterSettings, on_progress=None) -> np.ndarray:
    """Density-based (scikit-learn's HDBSCAN); its noise faces become singletons."""
    from sklearn.cluster import HDBSCAN

    _dense_check(x, "hdbscan")
    if len(x) < 2:
        return np.zeros(len(x), np.int64)
    labels = HDBSCAN(min_cluster_size=max(2, s.min_size), min_samples=1, metric="euclidean", copy=True).fit_predict(x)
    noise = labels < 0
    labels[noise] = labels.max() + 1 + np.arange(noise.sum())
    return labels


METHODS: dict[str, Callable] = {
    "whispers": whispers,
    "components": components,
    "agglomerative": agglomerative,
    "kmeans": kmeans,
    "hdbscan": hdbscan,
}


def by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0, 1, ... largest first (ties: the one whose first face comes first)."""
    _, first, inverse, counts = np.unique(labels, return_index=True, return_inverse=True, return_counts=True)
    rank = np.lexsort((first, -counts))
    new_id = np.empty_like(rank)
    new_id[rank] = np.arange(len(rank))
    return new_id[inverse.ravel()]


def cluster_members(labels: np.ndarray) -> list[np.ndarray]:
    """Rows of each cluster 0 .. max, in row order."""
    if len(labels) == 0:
        return []
    order = np.argsort(labels, kind="stable")
    return np.split(order, np.cumsum(np.bincount(labels, minlength=labels.max() + 1))[:-1])


def cluster(embeddings: np.ndarray, settings: ClusterSettings = ClusterSettings(), on_progress=None) -> np.ndarray:
    """One cluster id per face, 0 = the largest cluster."""
    if settings.method not in METHODS:
        raise ClusterError(f"unknown method {settings.method!r}; choose from {', '.join(METHODS)}")
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if len(x) == 0:
        return np.zeros(0, np.int64)
    return by_size(METHODS[settings.method](x, settings, on_progress))
