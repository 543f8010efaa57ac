"""FAISS indexes over unit embeddings, by squared L2 (the paper's verification distance).

On unit-length embeddings squared L2 ranks exactly like inner product (||a - b||^2 = 2 - 2 a.b);
it also matches the L2 k-means that trains IVF cells (in tests/test_index.py's setting:
recall@1 1.000 with L2 cells, 0.995 with inner product).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import math
import os
import sys

import numpy as np

from fnet.errors import FnetError

KINDS = ("flat", "ivf", "ivfpq", "hnsw", "codes128")
TRAIN_POINTS_PER_CELL = 64  # k-means sample: enough for stable cells, seconds on a laptop
PQ_MIN_ROWS = 39 * 256  # FAISS's floor for training 8-bit codebooks (256 centroids x 39 points)
CODE_DIMS = 128  # codes128: the paper's 128 bytes per face: PCA to 128 dimensions, one byte each
CODES_MIN_ROWS = 1000  # enough faces to estimate a 128-dimension PCA and each dimension's byte range


class IndexFileError(FnetError, ValueError):
    """An index that cannot be built, loaded or queried as asked."""


@dataclasses.dataclass(frozen=True)
class IndexParams:
    kind: str = "flat"
    nlist: int = 0  # IVF cells; 0 = automatic from the collection size
    nprobe: int = 0  # IVF cells searched per query; 0 = automatic
    pq_m: int = 0  # IVF-PQ sub-quantizers; 0 = automatic (dimension / 8)
    hnsw_m: int = 32
    ef_search: int = 128


def auto_params(params: IndexParams, rows: int, dim: int) -> IndexParams:
    """Sensible IVF / PQ sizes from the collection: 4 sqrt(N) cells (>= 39 training points
    each), a probe of 1/50 of them (at least 8), and 8-dimension PQ sub-vectors.

    Measured on 1M face-like vectors (bench/index_speed.py): 4,000 cells probed 80 at a
    time answer 25x faster than exact search with recall@1 0.962; sqrt(N) cells trained 6x
    faster but needed so many probes for that recall that only 9x remained.
    """
    nlist = params.nlist or max(1, min(int(4 * math.sqrt(rows)), rows // 39 or 1))
    nprobe = params.nprobe or max(1, min(nlist, max(8, nlist // 50)))
    pq_m = params.pq_m or next(m for m in (dim // 8, dim // 16, dim // 4, 1) if m and dim % m == 0)
    return dataclasses.replace(params, nlist=nlist, nprobe=nprobe, pq_m=pq_m)


def _faiss():
    import faiss

    return faiss


@contextlib.contextmanager
def quiet_stdout():
    """FAISS's on-disk inverted lists print notices ("resizing ...") with C's printf onto stdout,
    where `--json` output goes: dropped while they run."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        ctypes.CDLL(None).fflush(None)  # C's buffered notices to /dev/null, not to the restored stdout
        os.dup2(saved, 1)
        os.close(saved)


def make_index(params: IndexParams, dim: int):
    faiss = _faiss()
    if params.kind == "flat":
        return faiss.IndexFlatL2(dim)
    if params.kind == "codes128":  # exact search over 128-byte codes (PCA, then 8-bit scalar quantization)
        return faiss.index_factory(dim, f"PCA{min(CODE_DIMS, dim)},SQ8", faiss.METRIC_L2)
    if params.kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, params.hnsw_m)
        index.hnsw.efSearch = params.ef_search
        return index
    quantizer = faiss.IndexFlatL2(dim)
    if params.kind == "ivf":
        index = faiss.IndexIVFFlat(quantizer, dim, params.nlist)
    elif params.kind == "ivfpq":
        index = faiss.IndexIVFPQ(quantizer, dim, params.nlist, params.pq_m, 8)
    else:
        raise IndexFileError(f"unknown index kind {params.kind!r}; choose from {', '.join(KINDS)}")
    index.nprobe = params.nprobe
    return index


def _to_cpu(index):
    faiss = _faiss()
    return faiss.index_gpu_to_cpu(index) if hasattr(faiss, "index_gpu_to_cpu") and "Gpu" in type(index).__name__ else index


def maybe_gpu(index, use_gpu: bool):
    """Move to the GPU when asked, faiss-gpu is installed and a GPU is present (HNSW stays on CPU)."""
    faiss = _faiss()
    if use_gpu and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0 and "HNSW" not in type(index).__name__:
        return faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    return index


def search(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(squared L2 distances, store row ids), each (Q, k); id -1 where fewer than k exist."""
    distances, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return np.clip(distances, 0.0, 4.0), ids
