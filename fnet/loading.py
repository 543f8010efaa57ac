"""``load_model``: a named pretrained model or a checkpoint file -> a ready Embedder."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from fnet.core.checkpoint import load_checkpoint
from fnet.core.embedder import Embedder
from fnet.core.models import create_model
from fnet.core.pretrained import DEFAULT_MODEL, is_pretrained_name, pretrained_checkpoint


def load_model(
    name_or_path: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    precision: str = "auto",
    batch_size: int = 32,
) -> Embedder:
    """The default pretrained model, a named one (``fnet models``), or an fnet checkpoint file."""
    name = str(name_or_path) if name_or_path is not None else DEFAULT_MODEL
    path = pretrained_checkpoint(name) if is_pretrained_name(name) else Path(name)
    state, info = load_checkpoint(path)
    module = create_model(info.architecture, embedding_dim=info.embedding_dim)
    module.load_state_dict(state)
    return Embedder(module.eval(), info, device=device, precision=precision, batch_size=batch_size)
