"""Nearest neighbours for clustering: each face's k nearest faces (the k-NN graph), and
new faces' nearest old ones.

Up to EXACT_MAX_ROWS faces the graph is exact (FAISS brute force, BLAS). Beyond, it is
built cell by cell: k-means splits the faces into about 4 sqrt(N) cells, every face is
listed in its SPILL_CELLS nearest cells, and the faces of each cell are compared, as one
matrix product, with all faces listed there. Cells come from spherical k-means: plain L2
k-means on unit vectors grows a few giant cells (centroids of many faces are short, hence
near everything). A face's close neighbours (the only ones a clustering threshold keeps)
are found that way; a per-face IVF search finds them too but spends its time outside
BLAS (1M faces took over 10 minutes that way).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

EXACT_MAX_ROWS = 50_000
QUERY_BLOCK = 16_384
SPILL_CELLS = 12  # cells each face is listed in (200k synthetic faces: 3 -> 0.91 pairwise recall, 10 -> 0.99)


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
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    k = max(1, min(k, len(x) - 1))
    if len(x) <= EXACT_MAX_ROWS:
        distances, rows = nearest(x, x, k + 1, nprobe, on_progress)
    else:
        distances, rows = _cellwise(x, k + 1, SPILL_CELLS, on_progress)
    return _without_self(distances, rows, np.arange(len(x)))


def _cellwise(x: np.ndarray, k: int, spill: int, on_progress=None) -> tuple[np.ndarray, np.ndarray]:
    """Approximate k nearest rows (self included) of every row. k-means cells; each face is
    listed in its `spill` nearest cells, and the faces whose nearest cell is c are compared,
    as one matrix product, with every face listed in c. Two close faces either share their
    nearest cell or, lying near the border, are listed in each other's."""
    import faiss
    import torch

    rows, dim = x.shape
    # small cells (4 sqrt(N): 250 faces at 1M) keep a person's faces together; 16 training
    # faces per cell are enough for that and keep k-means under a minute at 1M
    cells = int(4 * math.sqrt(rows))
    kmeans = faiss.Kmeans(dim, cells, niter=10, seed=0, spherical=True, min_points_per_centroid=1, max_points_per_centroid=16)
    kmeans.train(x)
    nearest_cells = kmeans.index.search(x, spill)[1]
    queries_of = _group(nearest_cells[:, 0], cells)
    listed_in = _group(nearest_cells.ravel(), cells, np.repeat(np.arange(rows), spill))
    distances = np.full((rows, k), np.inf, np.float32)
    neighbours = np.full((rows, k), -1, np.int64)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with torch.inference_mode():
        for queries, candidates in zip(queries_of, listed_in):
            if len(queries) == 0:
                continue
            q, b = (torch.from_numpy(x[r]).to(device) for r in (queries, candidates))
            squared = (q * q).sum(1, keepdim=True) + (b * b).sum(1) - 2.0 * q @ b.T
            found = min(k, len(candidates))
            d, i = torch.topk(squared, found, dim=1, largest=False)
            distances[queries, :found] = d.cpu().numpy()
            neighbours[queries, :found] = candidates[i.cpu().numpy()]
            if on_progress:
                on_progress(len(queries))
    return np.clip(distances, 0.0, 4.0), neighbours


def _group(cell: np.ndarray, cells: int, values: np.ndarray | None = None) -> list[np.ndarray]:
    """values (default: positions) split by cell, for cells 0 .. cells-1."""
    order = np.argsort(cell, kind="stable")
    values = order if values is None else values[order]
    return np.split(values, np.cumsum(np.bincount(cell, minlength=cells))[:-1])


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
