"""The store seam: embedding store formats by name, and which one a path is (no torch).

A format reads (``open(path)``: a context manager with ``len``, ``attrs``, ``paths()``,
``labels()``, ``boxes()``, ``embeddings()``, ``blocks()``, ``take(rows)``, ``no_face()``) and
writes whole files (``write(path, blocks, attrs, no_face)``, atomically). The stages open and
name stores only through here, so a new format (a Parquet or LanceDB store, say) is one
module and one ``STORES.register`` line. A path's format is found by its suffix; any other
suffix is the default's (users name their files as they like).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fnet.registry import Registry


@dataclasses.dataclass(frozen=True)
class StoreFormat:
    name: str
    suffix: str  # of the files the stages name themselves (faces.h5, part-00000.h5)
    open: Callable[[str | os.PathLike], Any]
    write: Callable[..., int]


STORES = Registry("store format")
STORES.register("hdf5", "HDF5 through h5py: chunked, streamed, one file", "fnet.io.store:hdf5_format")
DEFAULT_STORE = "hdf5"


def store_format(path: str | os.PathLike | None = None) -> StoreFormat:
    """The format of an existing or new store at path (by suffix), or the default format."""
    formats = [STORES.build(entry.name) for entry in STORES]
    suffix = Path(path).suffix.lower() if path is not None else None
    return next((f for f in formats if f.suffix == suffix), STORES.build(DEFAULT_STORE))


def open_store(path: str | os.PathLike):
    """A store for reading, whatever its format: ``with open_store(path) as store: ...``."""
    return store_format(path).open(path)


def store_path(folder: str | os.PathLike, stem: str) -> Path:
    """Where a stage puts a store it names itself: folder/stem + the default format's suffix."""
    return Path(folder) / (stem + store_format().suffix)
