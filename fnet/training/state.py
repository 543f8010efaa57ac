"""Resumable training state without pickle: the model checkpoint (loadable by
fnet.load_model) plus a second safetensors file with the optimizer's tensors, its JSON
settings and the step."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from fnet.core.checkpoint import read_metadata, save_weights


def save_optimizer(path: Path, optimizer: torch.optim.Optimizer, step: int) -> None:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    save_weights(path, tensors, {"step": step, "param_groups": state["param_groups"], "scalars": scalars})


def load_optimizer(path: Path, optimizer: torch.optim.Optimizer) -> int:
    """Restore the optimizer in place; returns the step the state was saved at."""
    meta = read_metadata(path)
    state: dict[int, dict] = {}
    for name, tensor in load_file(str(path)).items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = tensor
    for name, value in meta["scalars"].items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return int(meta["step"])


def write_json(path: Path, data: dict) -> None:
    from fnet.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str))
