"""Model files users exchange: safetensors weights with fnet's JSON metadata in the header.

One file, no pickle: loading a checkpoint can never run code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from fnet.core.info import ModelInfo
from fnet.errors import FnetError
from fnet.io.atomic import atomic_path

METADATA_KEY = "fnet"


class CheckpointError(FnetError, ValueError):
    """A checkpoint file that cannot be used, with the path and the reason."""


def save_weights(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict) -> Path:
    """Write tensors + JSON metadata atomically (temp file, then rename)."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True)})
    return Path(path)


def save_checkpoint(path: str | os.PathLike, state_dict: dict[str, torch.Tensor], info: ModelInfo) -> Path:
    """A model checkpoint: its weights and its ModelInfo."""
    return save_weights(path, state_dict, info.to_dict())


def read_metadata(path: str | os.PathLike) -> dict:
    """fnet's JSON metadata of a safetensors file, without loading the weights."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({err})") from err
    if METADATA_KEY not in metadata:
        raise CheckpointError(f"{path}: safetensors file without fnet metadata (not an fnet checkpoint)")
    try:
        return json.loads(metadata[METADATA_KEY])
    except ValueError as err:
        raise CheckpointError(f"{path}: invalid fnet metadata ({err})") from err


def read_info(path: str | os.PathLike) -> ModelInfo:
    """A checkpoint's ModelInfo (fast: the weights are not loaded)."""
    try:
        return ModelInfo.from_dict(read_metadata(path))
    except (ValueError, TypeError) as err:
        if isinstance(err, CheckpointError):
            raise
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
