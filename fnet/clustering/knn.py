"""The k-nearest-neighbour graph of a set of embeddings, built with FAISS.

Exact (brute force, BLAS) up to EXACT_MAX_ROWS; beyond that an IVF index with few probes:
a clustering graph needs each face's near neighbours, which share its cell or a nearby
one, not a perfect ranking of the far ones (bench/cluster.py measures what that costs).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

EXACT_MAX_ROWS = 50_000
QUERY_BLOCK = 16_384


def neighbour_index(base: np.ndarray, nprobe: int = 0):
    """A FAISS index over base: exact up to EXACT_MAX_ROWS, IVF (4 sqrt(N) cells) beyond."""
    import faiss

    rows, dim = base.shape
    if rows <= EXACT_MAX_ROWS:
        index = faiss.IndexFlatL2(dim)
    else:
        nlist = int(4 * math.sqrt(rows))
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist)
        sample = np.random.default_rng(0).choice(rows, min(rows, 64 * nlist), replace=False)
        index.train(base[np.sort(sample)])
        index.nprobe = nprobe or max(4, nlist // 500)
    index.add(base)
    return index


def nearest(
    base: np.ndarray, queries: np.ndarray, k: int, nprobe: int = 0, on_progress: Callable[[int], None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(squared L2 distances, base rows) of each query's k nearest base rows; row -1 where fewer exist."""
    base, queries = (np.ascontiguousarray(a, dtype=np.float32) for a in (base, queries))
    index = neighbour_index(base, nprobe)
    distances = np.empty((len(queries), k), np.float32)
    rows = np.empty((len(queries), k), np.int64)
    for start in range(0, len(queries), QUERY_BLOCK):
        stop = min(start + QUERY_BLOCK, len(queries))
        distances[start:stop], rows[start:stop] = index.search(queries[start:stop], k)
        if on_progress:
            on_progress(stop - start)
    return np.clip(distances, 0.0, 4.0), rows


def knn_graph(
    embeddings: np.ndarray, k: int, nprobe: int = 0, on_progress: Callable[[int], None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(squared L2 distances, neighbour rows), each (N, k), nearest first, self excluded; row -1 where fewer exist."""
    k = max(1, min(k, len(embeddings) - 1))
    distances, rows = nearest(embeddings, embeddings, k + 1, nprobe, on_progress)
    return _without_self(distances, rows, np.arange(len(embeddings)))


def _without_self(d: np.ndarray, i: np.ndarray, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop each row's own id (or, if the search missed it, the farthest of the k + 1)."""
    is_self = i == own[:, None]
    is_self[~is_self.any(axis=1), -1] = True
    keep = np.argsort(is_self, axis=1, kind="stable")[:, :-1]
    return np.take_along_axis(d, keep, axis=1), np.take_along_axis(i, keep, axis=1)


def graph_edges(distances: np.ndarray, neighbours: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(source, target, distance) of the k-NN edges shorter than threshold."""
    source = np.repeat(np.arange(len(neighbours)), neighbours.shape[1])
    target, dist = neighbours.ravel(), distances.ravel()
    keep = (target >= 0) & (dist < threshold)
    return source[keep], target[keep], dist[keep]
