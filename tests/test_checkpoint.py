"""Checkpoints: safetensors + JSON metadata, round trips, and clear errors; never pickle."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

import fnet
from fnet.core.checkpoint import CheckpointError, load_checkpoint, read_info, save_checkpoint
from fnet.core.info import ModelInfo
from fnet.core.models import create_model


def small_info(**changes) -> ModelInfo:
    base = ModelInfo(name="tiny", architecture="inception_resnet_v1", embedding_dim=128, threshold=0.9,
                     training={"miner": "semihard", "margin": 0.2})
    return base.replace(**changes)


def test_round_trip_keeps_weights_and_metadata(tmp_path):
    torch.manual_seed(0)
    net = create_model("inception_resnet_v1", embedding_dim=128)
    path = save_checkpoint(tmp_path / "run" / "model.safetensors", net.state_dict(), small_info())
    state, info = load_checkpoint(path)
    assert info == small_info()
    for key, value in net.state_dict().items():
        assert torch.equal(state[key], value), key


def test_file_is_safetensors_with_readable_json_header(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", {"w": torch.ones(2)}, small_info())
    raw = path.read_bytes()
    header_len = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + header_len])
    meta = json.loads(header["__metadata__"]["fnet"])
    assert meta["embedding_dim"] == 128 and meta["training"]["miner"] == "semihard"
    assert meta["fnet_version"] == fnet.__version__
    assert b"\x80\x04" not in raw[:16]  # not a pickle stream


def test_trained_checkpoint_loads_as_a_model(tmp_path, people_crops):
    torch.manual_seed(0)
    net = create_model("inception_resnet_v1", embedding_dim=128).eval()
    path = save_checkpoint(tmp_path / "m.safetensors", net.state_dict(), small_info())
    model = fnet.load_model(path, device="cpu")
    assert model.info.embedding_dim == 128 and model.info.threshold == 0.9
    emb = model.embed(people_crops[0][:2])
    assert emb.shape == (2, 128)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_missing_corrupt_and_foreign_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.safetensors")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(CheckpointError, match="corrupt.safetensors"):
        read_info(corrupt)
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(1)}, str(foreign))
    with pytest.raises(CheckpointError, match="not an fnet checkpoint"):
        read_info(foreign)


def test_invalid_metadata_is_refused():
    with pytest.raises(ValueError, match="normalization"):
        small_info(normalization="zscore")
