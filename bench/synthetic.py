"""Synthetic face-like embeddings for the scale benchmarks (index_speed.py, cluster.py).

512-D unit vectors in tight groups, one group per person: same-person squared L2 about
0.5, different people about 2 (the pretrained model's distances on real faces look alike).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fnet.evaluation.metrics import unit_rows
from fnet.io.store import Rows, write_store

BLOCK = 100_000


def synthetic(rows: int, people: int, dim: int, queries: int, seed: int = 0):
    """(base, base labels, queries, query labels); each photo shows a random one of the people."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, dim)).astype(np.float32) / np.sqrt(dim)
    spread = 0.58 / np.sqrt(dim)  # same-person squared distance ~0.5

    def draw(n):
        labels = rng.integers(0, people, n)
        x = centres[labels] + rng.normal(scale=spread, size=(n, dim)).astype(np.float32)
        return unit_rows(x), labels

    base, base_labels = [], []
    for start in range(0, rows, BLOCK):
        x, y = draw(min(BLOCK, rows - start))
        base.append(x), base_labels.append(y)
    q, q_labels = draw(queries)
    return np.concatenate(base), np.concatenate(base_labels), q, q_labels


def write_synthetic_store(path: Path, base: np.ndarray, labels: np.ndarray, threshold: float = 1.24) -> Path:
    """An fnet store of the vectors, paths '0', '1', ... and the true person as label."""
    attrs = {"model": "synthetic", "embedding_dim": base.shape[1], "normalization": "fixed", "threshold": threshold, "dtype": "float32", "root": ""}
    blocks = (
        Rows(base[i : i + BLOCK], [str(j) for j in range(i, min(i + BLOCK, len(base)))], [str(v) for v in labels[i : i + BLOCK]],
             np.full((len(base[i : i + BLOCK]), 4), np.nan, np.float32))
        for i in range(0, len(base), BLOCK)
    )
    write_store(path, blocks, attrs)
    return path
