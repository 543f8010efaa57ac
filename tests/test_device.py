"""Device resolution and precision policy."""

from __future__ import annotations

import pytest
import torch

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


def test_precision_policy():
    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, "auto") is None  # exact fp32 on CPU
    assert autocast_dtype(cpu, "bf16") is torch.bfloat16
    assert autocast_dtype(torch.device("cuda"), "fp16") is torch.float16
