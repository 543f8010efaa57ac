"""The HDF5 embeddings store: one file holding embeddings, their sources, labels and boxes.

Layout (N rows):
    /embeddings  (N, D) float32 or float16, unit norm
    /paths       (N,) str    the embedded crop or photo, relative to the `root` attribute
    /labels      (N,) str    identity (the top folder of the path), "" when unknown
    /boxes       (N, 4) float32  face box in the source photo, NaN when unknown
    /no_face     (M,) str    photos in which no face was found, so that a rerun skips them
                             (absent in stores of fnet 0.1.0: read as none)
    /stamp_paths (K,) str    the photos embedded, with /stamps (K, 2) int64: each one's size
    /stamps      (K, 2) int64  and modification time (ns) when embedded, so that a replaced
                             photo is embedded again (absent in older stores: never re-checked)
    attributes   model, embedding_dim, normalization, threshold, fnet_version, created, root,
                 store_id (a uuid kept while rows are appended: indexes record it)

Files are only ever written whole, to a temporary name then renamed, so a reader or a
crash never sees half a store.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Self

import h5py
import numpy as np

from fnet import __version__
from fnet.errors import FnetError
from fnet.io.atomic import atomic_path
from fnet.io.lock import exclusive

CHUNK_ROWS = 1024
STRING = h5py.string_dtype("utf-8")


class StoreError(FnetError, ValueError):
    """A store that cannot be used as asked, naming the file and the reason."""


@dataclasses.dataclass
class Rows:
    """A block of store rows in memory."""

    embeddings: np.ndarray
    paths: list[str]
    labels: list[str]
    boxes: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    @classmethod
    def empty(cls, dim: int, dtype=np.float32) -> Rows:
        return cls(np.zeros((0, dim), dtype), [], [], np.zeros((0, 4), np.float32))

    def without(self, paths: set[str]) -> Rows:
        """These rows less those of the given photos (self when none is among them)."""
        keep = [i for i, path in enumerate(self.paths) if path not in paths]
        if len(keep) == len(self):
            return self
        return Rows(self.embeddings[keep], [self.paths[i] for i in keep], [self.labels[i] for i in keep], self.boxes[keep])

    @classmethod
    def concat(cls, blocks: list[Rows]) -> Rows:
        return cls(
            np.concatenate([b.embeddings for b in blocks]),
            [p for b in blocks for p in b.paths],
            [label for b in blocks for label in b.labels],
            np.concatenate([b.boxes for b in blocks]),
        )


def model_attrs(info, root: str = "", half: bool = False) -> dict:
    """The attributes a store made with this ModelInfo carries."""
    return {
        "model": info.name,
        "embedding_dim": info.embedding_dim,
        "normalization": info.normalization,
        "threshold": info.threshold,
        "dtype": "float16" if half else "float32",
        "root": root,
        "fnet_version": __version__,
    }


def check_room(path: str | os.PathLike, rows: int, attrs: dict) -> None:
    """Refuse before writing a store of `rows` rows that its disk cannot hold (HDF5 has crashed on a full disk)."""
    itemsize = 2 if attrs.get("dtype") == "float16" else 4
    needed = rows * (int(attrs["embedding_dim"]) * itemsize + 128) + 2**20  # + box, paths and labels (measured ~2.2 KB at 512-D)
    free = shutil.disk_usage(Path(path).parent).free
    if needed > free:
        full = StoreError(f"{path}: writing {rows:,} faces needs about {needed / 2**20:,.0f} MB, its disk has "
                          f"{free / 2**20:,.0f} MB free; free some and run the same command again (finished work is kept)")
        full.path, full.reason = str(path), "not enough space on its disk"
        raise full


def photo_stamp(path: str | os.PathLike) -> tuple[int, int]:
    """(size, mtime_ns) of a file: what changes when a photo is replaced or edited."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def check_can_extend(path: str | os.PathLike, have: dict, want: dict) -> None:
    """Refuse to append rows that the store would get wrong: another model, another root, another precision."""
    check_same_model(path, have, want)
    if have.get("root") and want.get("root") and have["root"] != want["root"]:
        raise StoreError(f"{path}: holds files under {have['root']}, not under {want['root']}: its paths would point "
                         "to the wrong files; write another store (fnet merge joins stores of one folder's shards)")
    if have.get("dtype", "float32") != want.get("dtype", "float32"):
        raise StoreError(f"{path}: holds {have.get('dtype', 'float32')} embeddings; appending {want['dtype']} would rewrite "
                         f"them all as {want['dtype']}: {'add' if have.get('dtype') == 'float16' else 'drop'} --half, or write another store")


def check_same_model(path: str | os.PathLike, have: dict, want: dict) -> None:
    """Refuse to mix embeddings of different models (they live in different spaces)."""
    for key in ("model", "embedding_dim", "normalization"):
        if have.get(key) != want.get(key):
            raise StoreError(
                f"{path}: holds embeddings of {have.get('model')!r} ({have.get('embedding_dim')}-D, "
                f"{have.get('normalization')}), not of {want.get('model')!r} ({want.get('embedding_dim')}-D, "
                f"{want.get('normalization')}); use another output file"
            )


def write_store(
    path: str | os.PathLike, blocks: Iterable[Rows], attrs: dict, no_face: Iterable[str] = (), stamps: dict | None = None
) -> int:
    """Write a whole store atomically from blocks of rows (streamed: memory stays bounded).

    stamps: photo path -> (size, mtime_ns) of the file embedded (see ``photo_stamp``)."""
    dtype = np.float16 if attrs.get("dtype") == "float16" else np.float32
    dim = int(attrs["embedding_dim"])
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        emb = f.create_dataset("embeddings", (0, dim), dtype, maxshape=(None, dim), chunks=(CHUNK_ROWS, dim), track_times=False)
        paths = f.create_dataset("paths", (0,), STRING, maxshape=(None,), chunks=(CHUNK_ROWS,), compression="gzip", track_times=False)
        labels = f.create_dataset("labels", (0,), STRING, maxshape=(None,), chunks=(CHUNK_ROWS,), compression="gzip", track_times=False)
        boxes = f.create_dataset("boxes", (0, 4), np.float32, maxshape=(None, 4), chunks=(CHUNK_ROWS, 4), track_times=False)
        count = 0
        for block in blocks:
            bad = ~np.isfinite(block.embeddings).all(axis=1)
            if bad.any():  # NaN weights, or a hostile store being merged: never written, never searched
                raise StoreError(f"{path}: the embedding of {block.paths[int(np.argmax(bad))]} is not finite (NaN or Inf); nothing was written")
            end = count + len(block)
            for dataset in (emb, paths, labels, boxes):
                dataset.resize(end, axis=0)
            emb[count:end] = block.embeddings.astype(dtype)
            paths[count:end] = block.paths
            labels[count:end] = block.labels
            boxes[count:end] = block.boxes
            count = end
        f.create_dataset("no_face", data=np.array(sorted(set(no_face)), dtype=object), dtype=STRING, track_times=False)
        stamped = sorted(stamps or {})
        f.create_dataset("stamp_paths", data=np.array(stamped, dtype=object), dtype=STRING, track_times=False)
        f.create_dataset("stamps", data=np.array([stamps[p] for p in stamped], np.int64).reshape(-1, 2), track_times=False)
        f.attrs.update({
            **attrs, "created": attrs.get("created") or datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "store_id": attrs.get("store_id") or uuid.uuid4().hex,  # kept when rows are appended; indexes check it
        })
    return count


class Store:
    """Read access to a store: ``len(store)``, ``store.attrs``, ``store.rows(start, stop)``, ``store.blocks()``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self._file = h5py.File(self.path, "r")
        except (OSError, FileNotFoundError) as err:
            raise StoreError(f"{path}: not a readable HDF5 file ({err})") from None
        missing = {"embeddings", "paths", "labels", "boxes"} - set(self._file)
        if missing or "model" not in self._file.attrs:
            self._file.close()
            raise StoreError(f"{path}: not an fnet embeddings store (missing {', '.join(sorted(missing)) or 'attributes'})")
        shape_problem = _shape_problem(self._file)
        if shape_problem:
            self._file.close()
            raise StoreError(f"{path}: not a well-formed fnet store ({shape_problem})")
        for name, dataset in self._file.items():
            if isinstance(dataset, h5py.Dataset) and (dataset.external or dataset.is_virtual):
                self._file.close()  # reading it would read another file, e.g. /etc/passwd as labels
                raise StoreError(f"{path}: dataset {name!r} keeps its data in other files (external or virtual HDF5 storage); "
                                 "fnet stores never do, so it is refused")
        self.attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in self._file.attrs.items()}

    def __len__(self) -> int:
        return self._file["embeddings"].shape[0]

    @property
    def dim(self) -> int:
        return self._file["embeddings"].shape[1]

    def _strings(self, name: str, start: int = 0, stop: int | None = None) -> list[str]:
        return [v.decode() if isinstance(v, bytes) else v for v in self._file[name][start:stop]]

    def rows(self, start: int = 0, stop: int | None = None) -> Rows:
        f = self._file
        return Rows(
            f["embeddings"][start:stop].astype(np.float32),
            self._strings("paths", start, stop),
            self._strings("labels", start, stop),
            f["boxes"][start:stop],
        )

    def embeddings(self) -> np.ndarray:
        return self._file["embeddings"][:].astype(np.float32, copy=False)  # no second copy of a float32 store

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Embeddings of the given rows, in the given order (h5py reads sorted unique rows)."""
        unique, inverse = np.unique(np.asarray(rows, np.int64), return_inverse=True)
        return np.ascontiguousarray(self._file["embeddings"][unique].astype(np.float32)[inverse])

    def boxes(self) -> np.ndarray:
        return self._file["boxes"][:]

    def labels(self) -> list[str]:
        return self._strings("labels")

    def paths(self, start: int = 0, stop: int | None = None) -> list[str]:
        return self._strings("paths", start, stop)

    def no_face(self) -> list[str]:
        return self._strings("no_face") if "no_face" in self._file else []

    def stamps(self) -> dict[str, tuple[int, int]]:
        """Photo path -> (size, mtime_ns) when it was embedded (empty for stores of fnet 0.1.0)."""
        if "stamps" not in self._file:
            return {}
        return dict(zip(self._strings("stamp_paths"), map(tuple, self._file["stamps"][:].tolist())))

    def blocks(self, size: int = 8 * CHUNK_ROWS) -> Iterator[Rows]:
        for start in range(0, len(self), size):
            yield self.rows(start, start + size)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _shape_problem(f: h5py.File) -> str | None:
    """What is wrong with a store's dataset shapes (a hand-made or damaged file), or None."""
    embeddings = f["embeddings"]
    if embeddings.ndim != 2:
        return f"embeddings are {embeddings.ndim}-D, not rows x dimensions"
    rows, dim = embeddings.shape
    if "embedding_dim" in f.attrs and int(f.attrs["embedding_dim"]) != dim:
        return f"embeddings have {dim} dimensions, its attributes say {int(f.attrs['embedding_dim'])}"
    for name in ("paths", "labels"):
        if f[name].shape != (rows,):
            return f"{name} has shape {f[name].shape}, not one per embedding ({rows})"
    if f["boxes"].shape != (rows, 4):
        return f"boxes have shape {f['boxes'].shape}, not {rows} x 4"
    return None


def merge_stores(inputs: list[str | os.PathLike], output: str | os.PathLike) -> int:
    """Join stores of the same model into one (streamed), in the order given."""
    if any(Path(p).resolve() == Path(output).resolve() for p in inputs):
        raise StoreError(f"{output}: is one of the stores to merge; write the merged store to a new file")
    with exclusive(output):  # one writer per store
        return _merge(inputs, output)


def _merge(inputs: list[str | os.PathLike], output: str | os.PathLike) -> int:
    stores = [Store(p) for p in inputs]
    try:
        if not stores:
            raise StoreError("nothing to merge")
        for store in stores[1:]:
            check_can_extend(store.path, store.attrs, stores[0].attrs)
        attrs = {**stores[0].attrs, "created": None, "store_id": None}
        no_face = {path for s in stores for path in s.no_face()}
        stamps = {path: stamp for s in reversed(stores) for path, stamp in s.stamps().items()}  # the first store's win
        return write_store(output, _unique_photos(stores), attrs, no_face, stamps)
    finally:
        for store in stores:
            store.close()


def _unique_photos(stores: list[Store]) -> Iterator[Rows]:
    """The stores' rows, without a photo that an earlier store already holds (a store merged twice, overlapping shards)."""
    earlier: set[str] = set()
    for store in stores:
        here: set[str] = set()
        for block in store.blocks():
            here.update(block.paths)
            block = block.without(earlier)
            if len(block):
                yield block
        earlier |= here


def hdf5_format():
    """This module as an entry of fnet.io.stores.STORES."""
    from fnet.io.stores import StoreFormat

    return StoreFormat("hdf5", ".h5", Store, write_store)
