"""The index stage: an embeddings store -> a FAISS index (fnet.retrieval) whose ids are the store's row numbers.

The index's JSON sidecar (``INDEX.json``) names the store and model it was built from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np

from fnet import __version__
from fnet.io.atomic import atomic_path
from fnet.io.lock import exclusive
from fnet.io.stores import open_store
from fnet.retrieval.faiss_index import (
    CODES_MIN_ROWS,
    PQ_MIN_ROWS,
    TRAIN_POINTS_PER_CELL,
    IndexFileError,
    IndexParams,
    _faiss,
    _to_cpu,
    auto_params,
    make_index,
    maybe_gpu,
    quiet_stdout,
)


def _train_sample(store, count: int, seed: int = 0) -> np.ndarray:
    rows = len(store)
    if rows <= count:
        return store.embeddings()
    return store.take(np.random.default_rng(seed).choice(rows, count, replace=False))


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


IVFDATA = ".ivfdata"  # an on-disk index's inverted lists: INDEX.<token>.ivfdata beside INDEX, named in its sidecar


def ivfdata_path(path: Path) -> Path:
    """A new, unique file for the inverted lists of an on-disk index at path (the old one stays until the swap)."""
    return path.with_name(f"{path.name}.{os.urandom(4).hex()}{IVFDATA}")


def save_index(index, meta: dict, path: Path) -> None:
    """Write the index and its sidecar so that a reader always finds a matching pair.

    Two files cannot be renamed at once. So the sidecar names the index file it describes (inode,
    size, modification time, which a rename keeps) and also carries the previous index's
    metadata: it is replaced first, the index second. A reader between the two renames, or after
    a crash between them, finds the old index and its old metadata in the new sidecar.
    """
    with atomic_path(path) as tmp:
        _faiss().write_index(_to_cpu(index), str(tmp))
        previous = _current_meta(path)
        with atomic_path(sidecar(path)) as side:
            side.write_text(json.dumps({**meta, "index_file": _stamp(tmp), "previous": previous}, indent=2))
    for stale in path.parent.glob(path.name + ".*" + IVFDATA):  # lists of an index replaced, or of a crashed build
        if stale.name != meta.get("ivfdata"):
            stale.unlink(missing_ok=True)  # a reader that has them mapped keeps its mapping


def _stamp(path: Path) -> dict:
    st = os.stat(path)
    return {"inode": st.st_ino, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _current_meta(path: Path) -> dict | None:
    """The metadata of the index file now at path (None when there is none, or no sidecar)."""
    try:
        return _matching_meta(path, json.loads(sidecar(path).read_text()))
    except (OSError, ValueError, IndexFileError):
        return None


def _matching_meta(path: Path, meta: dict) -> dict:
    """Of the sidecar's current and previous metadata, the one describing the index file at path."""
    if "index_file" not in meta:  # written by an earlier fnet: trusted as it is
        return meta
    stamp = _stamp(path)
    for candidate in (meta, meta.get("previous") or {}):
        if candidate.get("index_file") == stamp:
            return {k: v for k, v in candidate.items() if k != "previous"}
    raise IndexFileError(f"{path}: its sidecar {sidecar(path).name} describes another index file (copied or edited apart?); "
                         "build the index again")


def load_index(path: str | os.PathLike, use_gpu: bool = False):
    """(faiss index, its metadata); refuses an index without its sidecar, or with another index's."""
    path = Path(path)
    if not path.is_file() or not sidecar(path).is_file():
        raise IndexFileError(f"{path}: no such index (an fnet index is INDEX plus INDEX.json)")
    for attempt in range(50):  # a rebuild may replace the files while they are read: read them again
        try:
            before = _stamp(path)
            meta = _matching_meta(path, json.loads(sidecar(path).read_text()))
            faiss = _faiss()
            with quiet_stdout() if meta.get("ivfdata") else contextlib.nullcontext():
                index = faiss.read_index(str(path), faiss.IO_FLAG_ONDISK_SAME_DIR)  # on-disk lists: beside the index, wherever it moved
            if _stamp(path) == before:
                break
        except (IndexFileError, ValueError):  # a sidecar read just before both were replaced
            if attempt == 49:
                raise
        time.sleep(0.02)
    else:
        raise IndexFileError(f"{path}: kept changing while it was read (rebuilt in a loop?); try again")
    if "nprobe" in meta and hasattr(index, "nprobe"):
        index.nprobe = meta["nprobe"]
    if meta.get("kind") == "hnsw":
        index.hnsw.efSearch = meta.get("ef_search", 128)
    return maybe_gpu(index, use_gpu), meta


def build_index(store_path: Path, output: Path, params: IndexParams = IndexParams(), add: bool = False, use_gpu: bool = False) -> dict:
    """Build (or with add=True extend) the index of a store; returns the metadata written."""
    store_path, output = Path(store_path), Path(output)
    if output.resolve() == store_path.resolve():
        raise IndexFileError(f"{output}: is the store itself; the index needs another file name (e.g. faces.faiss)")
    with exclusive(output), open_store(store_path) as store:  # one writer per index
        rows, dim = len(store), store.dim
        if add:
            index, meta = load_index(output, use_gpu)
            if meta.get("ivfdata"):
                raise IndexFileError(f"{output}: its inverted lists are on disk ({meta['ivfdata']}) and are not extended "
                                     "in place; build it again (fnet index --ray --on-disk)")
            if meta["model"] != store.attrs["model"] or meta["embedding_dim"] != dim:
                raise IndexFileError(f"{output}: built for {meta['model']!r}, but {store_path} holds {store.attrs['model']!r}")
            start = index.ntotal
            if meta.get("store_id") and meta["store_id"] != store.attrs.get("store_id"):
                raise IndexFileError(f"{output}: was built from another store than {store_path} (store ids differ); "
                                     "build a new index for it")
            if start > rows:
                raise IndexFileError(f"{output}: has {start} vectors but {store_path} only {rows} rows: not its store")
        else:
            params, index = trained_index(store, store_path, params, use_gpu)
            start = 0
            meta = {"kind": params.kind, **dataclasses.asdict(params)}
        add_rows(index, store, store_path, start, rows)
        meta.update(store_meta(store, store_path, int(index.ntotal)))
        save_index(index, meta, output)  # under the lock: no second build writes between our two files
    return meta


def trained_index(store, store_path: Path, params: IndexParams, use_gpu: bool = False):
    """(the sizes chosen, a new index of that kind trained on a sample of the store's rows)."""
    rows, dim = len(store), store.dim
    if rows == 0:
        raise IndexFileError(f"{store_path}: the store is empty")
    if params.kind == "ivfpq" and rows < PQ_MIN_ROWS:
        raise IndexFileError(
            f"{store_path}: {rows:,} faces are too few to train IVF-PQ's codebooks (at least {PQ_MIN_ROWS:,}); "
            "at this size --kind flat is exact and fast"
        )
    if params.kind == "codes128" and rows < CODES_MIN_ROWS:
        raise IndexFileError(
            f"{store_path}: {rows:,} faces are too few to train 128-byte codes (at least {CODES_MIN_ROWS:,}); "
            "at this size --kind flat is exact and small enough"
        )
    params = auto_params(params, rows, dim)
    index = maybe_gpu(make_index(params, dim), use_gpu)
    if not index.is_trained:
        sample = _train_sample(store, TRAIN_POINTS_PER_CELL * params.nlist)
        if not np.isfinite(sample).all():
            raise IndexFileError(f"{store_path}: holds embeddings that are not finite (NaN or Inf); it cannot be indexed")
        index.train(sample)
    return params, index


def add_rows(index, store, store_path: Path, start: int, stop: int, with_ids: bool = False) -> None:
    """Add the store's rows [start, stop) to index, block by block; with_ids: their row numbers as ids
    (an index that does not number its vectors itself, e.g. one shard of a parallel build)."""
    for block_start in range(start, stop, 65536):
        block = store.rows(block_start, min(block_start + 65536, stop))
        if not np.isfinite(block.embeddings).all():
            raise IndexFileError(f"{store_path}: holds embeddings that are not finite (NaN or Inf); it cannot be indexed")
        vectors = np.ascontiguousarray(block.embeddings, dtype=np.float32)
        if with_ids:
            index.add_with_ids(vectors, np.arange(block_start, block_start + len(vectors), dtype=np.int64))
        else:
            index.add(vectors)


def store_meta(store, store_path: Path, rows: int) -> dict:
    """What an index's sidecar records of the store it was built from."""
    return {
        "store": str(store_path.resolve()), "rows": rows, "model": store.attrs["model"], "embedding_dim": store.dim,
        "normalization": store.attrs["normalization"], "threshold": float(store.attrs["threshold"]), "fnet_version": __version__,
        "store_id": store.attrs.get("store_id"),  # `--add` refuses another store's rows
    }


