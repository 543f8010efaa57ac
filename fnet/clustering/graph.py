"""Grouping a face graph: connected components, and Chinese whispers (Biemann, 2006).

Edges join faces closer than the threshold. Connected components put a face with anyone
it is linked to, so one wrong edge merges two people; Chinese whispers lets every face
take the label most of its neighbours carry (weighted by closeness), which cuts such weak
bridges. Both are linear in the edges, vectorised with numpy.
"""

from __future__ import annotations

import numpy as np


def _symmetric(rows: int, source: np.ndarray, target: np.ndarray, weight: np.ndarray):
    from scipy.sparse import coo_matrix

    graph = coo_matrix((np.concatenate([weight, weight]), (np.concatenate([source, target]), np.concatenate([target, source]))), shape=(rows, rows))
    return graph.tocsr()  # duplicate edges (a->b and b->a both in the k-NN lists) add up


def connected_components(rows: int, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    from scipy.sparse.csgraph import connected_components as components

    graph = _symmetric(rows, source, target, np.ones(len(source), np.float32))
    return components(graph, directed=False)[1]


def chinese_whispers(
    rows: int, source: np.ndarray, target: np.ndarray, weight: np.ndarray, iterations: int = 20, seed: int = 0
) -> np.ndarray:
    """Labels after `iterations` rounds; each round updates the nodes in a random order, a
    tenth of them at a time (a fully synchronous update oscillates on two-node clusters)."""
    graph = _symmetric(rows, source, target, weight.astype(np.float64))
    indptr, indices, data = graph.indptr, graph.indices, graph.data
    labels = np.arange(rows)
    rng = np.random.default_rng(seed)
    degree = np.diff(indptr)
    connected = np.flatnonzero(degree > 0)
    for _ in range(iterations if len(connected) else 0):
        changed = 0
        for block in np.array_split(rng.permutation(connected), min(10, len(connected))):
            new = _majority_labels(block, indptr, indices, data, labels, rng)
            changed += int((new != labels[block]).sum())
            labels[block] = new
        if changed == 0:
            break
    return labels


def _majority_labels(nodes, indptr, indices, data, labels, rng) -> np.ndarray:
    """For each node, the neighbour label with the largest total edge weight (ties at random)."""
    starts, counts = indptr[nodes], indptr[nodes + 1] - indptr[nodes]
    owner = np.repeat(np.arange(len(nodes)), counts)
    edge = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    neighbour_label = labels[indices[edge]]
    # total weight per (node, label): sort by the pair, sum runs
    order = np.lexsort((neighbour_label, owner))
    owner, neighbour_label, weight = owner[order], neighbour_label[order], data[edge][order]
    run = np.flatnonzero(np.r_[True, (owner[1:] != owner[:-1]) | (neighbour_label[1:] != neighbour_label[:-1])])
    total = np.add.reduceat(weight, run) + rng.random(len(run)) * 1e-9
    run_owner, run_label = owner[run], neighbour_label[run]
    # best run per node: sort by (node, -total), first of each node
    best = np.lexsort((-total, run_owner))
    first = best[np.r_[True, run_owner[best][1:] != run_owner[best][:-1]]]
    return run_label[first]
