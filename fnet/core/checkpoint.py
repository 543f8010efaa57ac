"""Model files users exchange: safetensors weights with fnet's JSON metadata in the header.

One file, no pickle: loading a checkpoint can never run code.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from fnet.core.info import ModelInfo

METADATA_KEY = "fnet"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used, with the path and the reason."""


def save_checkpoint(path: str | os.PathLike, state_dict: dict[str, torch.Tensor], info: ModelInfo) -> Path:
    """Write weights + metadata atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={METADATA_KEY: json.dumps(info.to_dict(), sort_keys=True)})
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a model file is not a secret
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_info(path: str | os.PathLike) -> ModelInfo:
    """Only the metadata, without loading weights (fast, for listings)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({err})") from err
    if METADATA_KEY not in metadata:
        raise CheckpointError(f"{path}: safetensors file without fnet metadata (not an fnet checkpoint)")
    try:
        return ModelInfo.from_dict(json.loads(metadata[METADATA_KEY]))
    except (ValueError, TypeError, KeyError) as err:
        raise CheckpointError(f"{path}: invalid fnet metadata ({err})") from err


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], ModelInfo]:
    """Weights and metadata of a checkpoint; raises CheckpointError naming the file."""
    if not Path(path).is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    info = read_info(path)
    try:
        return load_file(str(path)), info
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: cannot read weights ({err})") from err
