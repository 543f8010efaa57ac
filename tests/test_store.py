"""The HDF5 embeddings store."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from fnet.io.store import Rows, Store, StoreError, check_same_model, merge_stores, write_store

ATTRS = {"model": "facenet-casia", "embedding_dim": 4, "normalization": "fixed", "threshold": 1.17, "dtype": "float32", "root": "/x"}


def rows(start: int, count: int) -> Rows:
    rng = np.random.default_rng(start)
    emb = rng.normal(size=(count, 4)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return Rows(emb, [f"p/{i}.png" for i in range(start, start + count)], ["p"] * count, np.full((count, 4), np.nan, np.float32))


def test_round_trip_in_blocks(tmp_path):
    path = tmp_path / "faces.h5"
    assert write_store(path, [rows(0, 3), rows(3, 2)], ATTRS) == 5
    with Store(path) as store:
        assert len(store) == 5 and store.dim == 4
        assert store.attrs["model"] == "facenet-casia" and store.attrs["created"]
        got = store.rows()
        np.testing.assert_array_equal(got.embeddings, np.concatenate([rows(0, 3).embeddings, rows(3, 2).embeddings]))
        assert got.paths == [f"p/{i}.png" for i in range(5)] and got.labels == ["p"] * 5
        np.testing.assert_array_equal(store.take(np.array([4, 0, 4])), got.embeddings[[4, 0, 4]])


def test_half_precision(tmp_path):
    path = tmp_path / "half.h5"
    write_store(path, [rows(0, 10)], {**ATTRS, "dtype": "float16"})
    with h5py.File(path) as f:
        assert f["embeddings"].dtype == np.float16
    with Store(path) as store:
        assert np.abs(store.embeddings() - rows(0, 10).embeddings).max() < 1e-3


def test_merge_keeps_order_and_refuses_other_models(tmp_path):
    write_store(tmp_path / "a.h5", [rows(0, 3)], ATTRS)
    write_store(tmp_path / "b.h5", [rows(3, 4)], ATTRS)
    assert merge_stores([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "ab.h5") == 7
    with Store(tmp_path / "ab.h5") as store:
        assert store.paths() == [f"p/{i}.png" for i in range(7)]
    write_store(tmp_path / "c.h5", [rows(0, 1)], {**ATTRS, "model": "other"})
    with pytest.raises(StoreError, match="'other'"):
        merge_stores([tmp_path / "a.h5", tmp_path / "c.h5"], tmp_path / "ac.h5")
    assert not (tmp_path / "ac.h5").exists()


def test_not_a_store(tmp_path):
    (tmp_path / "x.h5").write_text("text")
    with pytest.raises(StoreError, match="x.h5: not a readable HDF5 file"):
        Store(tmp_path / "x.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["data"] = [1]
    with pytest.raises(StoreError, match="not an fnet embeddings store"):
        Store(tmp_path / "other.h5")
    with pytest.raises(StoreError, match="use another output file"):
        check_same_model("faces.h5", ATTRS, {**ATTRS, "embedding_dim": 128})
