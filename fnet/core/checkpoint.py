"""Model files users exchange: safetensors weights with fnet's JSON metadata in the header.

One file, no pickle: loading a checkpoint can never run code.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save, save_file

from fnet.core.info import ModelInfo
from fnet.errors import FnetError
from fnet.io.atomic import atomic_path

METADATA_KEY = "fnet"
DIGEST_KEY = "fnet_weights_sha256"


class CheckpointError(FnetError, ValueError):
    """A checkpoint file that cannot be used, with the path and the reason."""


def save_weights(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict) -> Path:
    """Write tensors + JSON metadata atomically (temp file, then rename), with the sha256 of the
    tensor bytes in the header, so that a changed or damaged file is refused when loaded."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    digest = _data_sha256(io.BytesIO(save(tensors)))  # the tensor bytes do not depend on the header
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True), DIGEST_KEY: digest})
    return Path(path)


def load_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, after checking them against the digest written with them (when there is one)."""
    try:
        with open(path, "rb") as handle:
            header = json.loads(handle.read(struct.unpack("<Q", handle.read(8))[0]))
            recorded = (header.get("__metadata__") or {}).get(DIGEST_KEY)
            if recorded and _data_sha256(handle) != recorded:
                raise CheckpointError(f"{path}: its weights are not those written with it (sha256 differs): the file was "
                                      "changed or damaged; delete it (a converted model is converted again) or restore it")
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, struct.error) as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(f"{path}: cannot read weights ({err})") from err


def _data_sha256(handle) -> str:
    """sha256 of a safetensors stream's tensor bytes (everything after its header)."""
    handle.seek(0)
    handle.seek(8 + struct.unpack("<Q", handle.read(8))[0])
    digest = hashlib.sha256()
    for chunk in iter(lambda: handle.read(2**20), b""):
        digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(path: str | os.PathLike, state_dict: dict[str, torch.Tensor], info: ModelInfo) -> Path:
    """A model checkpoint: its weights and its ModelInfo."""
    return save_weights(path, state_dict, info.to_dict())


def has_digest(path: str | os.PathLike) -> bool:
    """Whether the file records the sha256 of its tensors (files written before fnet did are not checked)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return DIGEST_KEY in (handle.metadata() or {})
    except (SafetensorError, OSError):
        return False


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
    return load_weights(path), info
