"""The index stage: an HDF5 store -> a FAISS index whose ids are the store's row numbers.

Every index uses squared L2, the paper's verification distance, so results need no
conversion. On unit-length embeddings it ranks exactly like inner product
(||a - b||^2 = 2 - 2 a.b); it also matches the L2 k-means that trains IVF cells (in
tests/test_index.py's setting: recall@1 1.000 with L2 cells, 0.995 with inner product).
The index's JSON sidecar (``INDEX.json``) names the store and model it was built from.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np

from fnet import __version__
from fnet.errors import FnetError
from fnet.io.atomic import atomic_path
from fnet.io.lock import exclusive
from fnet.io.store import StoreError
from fnet.io.stores import open_store

KINDS = ("flat", "ivf", "ivfpq", "hnsw")
TRAIN_POINTS_PER_CELL = 64  # k-means sample: enough for stable cells, seconds on a laptop
PQ_MIN_ROWS = 39 * 256  # FAISS's floor for training 8-bit codebooks (256 centroids x 39 points)


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


def make_index(params: IndexParams, dim: int):
    faiss = _faiss()
    if params.kind == "flat":
        return faiss.IndexFlatL2(dim)
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


def _train_sample(store, count: int, seed: int = 0) -> np.ndarray:
    rows = len(store)
    if rows <= count:
        return store.embeddings()
    return store.take(np.random.default_rng(seed).choice(rows, count, replace=False))


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def save_index(index, meta: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        _faiss().write_index(_to_cpu(index), str(tmp))
    with atomic_path(sidecar(path)) as tmp:
        tmp.write_text(json.dumps(meta, indent=2))


def _to_cpu(index):
    faiss = _faiss()
    return faiss.index_gpu_to_cpu(index) if hasattr(faiss, "index_gpu_to_cpu") and "Gpu" in type(index).__name__ else index


def load_index(path: str | os.PathLike, use_gpu: bool = False):
    """(faiss index, its metadata); refuses an index without its sidecar."""
    path = Path(path)
    if not path.is_file() or not sidecar(path).is_file():
        raise IndexFileError(f"{path}: no such index (an fnet index is INDEX plus INDEX.json)")
    meta = json.loads(sidecar(path).read_text())
    index = _faiss().read_index(str(path))
    if "nprobe" in meta and hasattr(index, "nprobe"):
        index.nprobe = meta["nprobe"]
    if meta.get("kind") == "hnsw":
        index.hnsw.efSearch = meta.get("ef_search", 128)
    return maybe_gpu(index, use_gpu), meta


def maybe_gpu(index, use_gpu: bool):
    """Move to the GPU when asked, faiss-gpu is installed and a GPU is present (HNSW stays on CPU)."""
    faiss = _faiss()
    if use_gpu and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0 and "HNSW" not in type(index).__name__:
        return faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    return index


def build_index(store_path: Path, output: Path, params: IndexParams = IndexParams(), add: bool = False, use_gpu: bool = False) -> dict:
    """Build (or with add=True extend) the index of a store; returns the metadata written."""
    store_path, output = Path(store_path), Path(output)
    if output.resolve() == store_path.resolve():
        raise IndexFileError(f"{output}: is the store itself; the index needs another file name (e.g. faces.faiss)")
    with exclusive(output), open_store(store_path) as store:  # one writer per index
        rows, dim = len(store), store.dim
        if add:
            index, meta = load_index(output, use_gpu)
            if meta["model"] != store.attrs["model"] or meta["embedding_dim"] != dim:
                raise IndexFileError(f"{output}: built for {meta['model']!r}, but {store_path} holds {store.attrs['model']!r}")
            start = index.ntotal
            if start > rows:
                raise IndexFileError(f"{output}: has {start} vectors but {store_path} only {rows} rows: not its store")
        else:
            if rows == 0:
                raise IndexFileError(f"{store_path}: the store is empty")
            if params.kind == "ivfpq" and rows < PQ_MIN_ROWS:
                raise IndexFileError(
                    f"{store_path}: {rows:,} faces are too few to train IVF-PQ's codebooks (at least {PQ_MIN_ROWS:,}); "
                    "at this size --kind flat is exact and fast"
                )
            params = auto_params(params, rows, dim)
            index = maybe_gpu(make_index(params, dim), use_gpu)
            if not index.is_trained:
                index.train(_train_sample(store, TRAIN_POINTS_PER_CELL * params.nlist))
            start = 0
            meta = {"kind": params.kind, **dataclasses.asdict(params)}
        for block_start in range(start, rows, 65536):
            index.add(np.ascontiguousarray(store.rows(block_start, min(block_start + 65536, rows)).embeddings))
        meta.update(
            store=str(store_path.resolve()), rows=int(index.ntotal), model=store.attrs["model"], embedding_dim=dim,
            normalization=store.attrs["normalization"], threshold=float(store.attrs["threshold"]), fnet_version=__version__,
        )
    save_index(index, meta, output)
    return meta


def search(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(squared L2 distances, store row ids), each (Q, k); id -1 where fewer than k exist."""
    distances, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return np.clip(distances, 0.0, 4.0), ids


__all__ = ["KINDS", "IndexFileError", "IndexParams", "StoreError", "auto_params", "build_index", "load_index", "search"]
