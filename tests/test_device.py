"""Device resolution and precision policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fnet
from fnet.core import device
from fnet.core.device import autocast_dtype, resolve_device


def test_auto_picks_the_best_available():
    device = resolve_device("auto")
    assert device.type == ("cuda" if torch.cuda.is_available() else device.type)
    assert resolve_device("CPU").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_missing_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA GPU"):
        resolve_device("cuda")


def test_nonsense_device_and_precision_are_refused():
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu9")
    with pytest.raises(ValueError, match="unknown precision"):
        autocast_dtype(torch.device("cpu"), "fp8")


def test_precision_policy(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(device, "cpu_has_amx", lambda: False)
    assert autocast_dtype(cpu, "auto") is None  # fp32 where bf16 would be emulated (slower)
    monkeypatch.setattr(device, "cpu_has_amx", lambda: True)
    assert autocast_dtype(cpu, "auto") is torch.bfloat16  # AMX: bf16 in hardware
    assert autocast_dtype(cpu, "auto", cpu_bf16=False) is None  # training on a CPU stays fp32
    assert autocast_dtype(cpu, "fp32") is None
    assert autocast_dtype(cpu, "bf16") is torch.bfloat16
    assert autocast_dtype(torch.device("cuda"), "fp16") is torch.float16


def test_bf16_embeddings_tell_the_same_people_apart_as_fp32(people_crops):
    """bf16 (auto on AMX CPUs) moves each real face's embedding by a hair, and no decision."""
    crops, labels = people_crops
    exact = fnet.load_model(device="cpu", precision="fp32").embed(crops)
    fast = fnet.load_model(device="cpu", precision="bf16").embed(crops)
    assert np.min(np.sum(exact * fast, axis=1)) > 0.99  # cosine of each face's two embeddings
    threshold = fnet.load_model(device="cpu").info.threshold
    decisions, nearest = [], []
    for embeddings in (exact, fast):
        distances = np.sum((embeddings[:, None] - embeddings[None]) ** 2, axis=-1)
        decisions.append(distances < threshold)  # "same person" for every pair
        np.fill_diagonal(distances, np.inf)
        nearest.append(labels[np.argmin(distances, axis=1)])  # who each face's nearest other face is
    assert np.mean(decisions[0] == decisions[1]) > 0.99
    np.testing.assert_array_equal(nearest[0], nearest[1])
    assert np.mean(nearest[1] == labels) > 0.8  # and the embeddings do recognise these people
