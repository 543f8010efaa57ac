"""Device choice and per-device speed settings: the one place that decides where tensors live."""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

import torch

from fnet.errors import SettingsError

PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """'auto' -> cuda, then mps, then cpu; 'cpu', 'cuda', 'cuda:1', 'mps' are checked to exist."""
    if isinstance(spec, torch.device):
        return spec
    spec = spec.strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as err:
        raise SettingsError(f"unknown device {spec!r}: use auto, cpu, cuda, cuda:N or mps") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SettingsError(f"device {spec!r} asked for, but this torch build sees no CUDA GPU")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise SettingsError(f"device {spec!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SettingsError("device 'mps' asked for, but MPS is not available")
    return device


def autocast_dtype(device: torch.device, precision: str = "auto", cpu_bf16: bool = True) -> torch.dtype | None:
    """The autocast dtype for inference, or None for plain fp32.

    'auto' is bf16 on GPUs that support it, else fp16; on a CPU it is bf16 where the CPU has
    AMX matrix units (and `cpu_bf16`: training passes False), fp32 elsewhere. With AMX, bf16
    embeds 3.2x as fast at batch 32 with LFW accuracy within a quarter of a standard error
    (98.57% against 98.62%; docs/models.md, Precision); without it bf16 is emulated and slower.
    """
    if precision not in PRECISIONS:
        raise SettingsError(f"unknown precision {precision!r}: choose from {', '.join(PRECISIONS)}")
    if precision == "auto" and device.type == "cpu":
        return torch.bfloat16 if cpu_bf16 and cpu_has_amx() else None
    if precision == "fp32":
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16" or (device.type == "cuda" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


def cpu_has_amx() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (Intel AMX: Sapphire Rapids and later)."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe and probe())


def autocast(device: torch.device, dtype: torch.dtype | None):
    """An autocast context for `dtype`, or a no-op one for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def available_cpus() -> int:
    """CPUs this process may really use: its affinity mask, capped by a cgroup CPU quota (containers)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(count, math.ceil(quota))) if quota else max(1, count)


def _cgroup_quota() -> float | None:
    """The CPU quota in CPUs (cgroup v2 cpu.max, or v1 cfs quota / period), or None when unlimited."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def configure_cpu_threads(threads: int | None = None) -> int:
    """Size torch's intra-op pool: `threads`, else $FNET_THREADS, else the CPUs available.

    An explicit OMP_NUM_THREADS is respected when neither is given. Returns the count in use.
    On a machine busy with other work, fewer threads than cores is faster (docs/speed.md).
    """
    if threads is None and os.environ.get("FNET_THREADS"):
        threads = int(os.environ["FNET_THREADS"])
    if threads is None and "OMP_NUM_THREADS" in os.environ:
        return torch.get_num_threads()
    if threads is not None and threads < 1:
        raise SettingsError(f"threads must be at least 1, not {threads}")
    torch.set_num_threads(threads or available_cpus())
    return torch.get_num_threads()


def prefers_channels_last(device: torch.device) -> bool:
    """channels_last speeds convolutions on CPU (oneDNN) and CUDA tensor cores; not on MPS."""
    return device.type in ("cpu", "cuda")
