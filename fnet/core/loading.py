"""``load_model``: a named pretrained model or a checkpoint file -> a ready Embedder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from fnet.core.checkpoint import CheckpointError, load_checkpoint, read_info
from fnet.core.embedder import Embedder
from fnet.core.info import ModelInfo
from fnet.core.models import create_model
from fnet.core.pretrained import (
    DEFAULT_MODEL,
    ENSEMBLES,
    canonical_name,
    is_pretrained_name,
    pretrained_checkpoint,
    pretrained_info,
)

if TYPE_CHECKING:
    from fnet.core.ensemble import EnsembleEmbedder


def _pretrained_or_file(name_or_path: str | os.PathLike | None) -> tuple[str, bool]:
    """(name, is it a pretrained name); neither a pretrained name nor a file: PretrainedError naming it."""
    name = str(name_or_path) if name_or_path is not None else DEFAULT_MODEL
    if is_pretrained_name(name):
        return name, True
    if not Path(name).exists():
        canonical_name(name)  # raises: unknown model, `fnet models` lists the known ones
    return name, False


def model_info(name_or_path: str | os.PathLike | None = None) -> ModelInfo:
    """A model's metadata without its weights (fast): the pretrained registry's, or a checkpoint file's header."""
    name, pretrained = _pretrained_or_file(name_or_path)
    return pretrained_info(name) if pretrained else read_info(name)


def load_model(
    name_or_path: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    precision: str = "auto",
    batch_size: int | None = None,
) -> Embedder | EnsembleEmbedder:
    """The default pretrained model, a named one or ensemble (``fnet models``), or an fnet checkpoint file.

    batch_size: faces per forward pass (None: 16 on a CPU, 64 on a GPU: fnet.core.embedder.default_batch_size)."""
    name, pretrained = _pretrained_or_file(name_or_path)
    if pretrained and (ensemble := ENSEMBLES.get(canonical_name(name))):
        from fnet.core.ensemble import EnsembleEmbedder

        members = [load_model(member, device, precision, batch_size) for member, _ in ensemble.members]
        return EnsembleEmbedder(members, [weight for _, weight in ensemble.members], ensemble.info)
    path = pretrained_checkpoint(name) if pretrained else Path(name)
    state, info = load_checkpoint(path)
    with torch.device("meta"):  # no random initialisation: every weight comes from the file (0.25 s saved)
        module = create_model(info.architecture, embedding_dim=info.embedding_dim)
    try:
        module.load_state_dict(state, assign=True)
    except RuntimeError as err:  # missing / unexpected / mis-shaped tensors: the header does not describe the weights
        first = str(err).strip().splitlines()[0][:200]
        raise CheckpointError(f"{path}: its weights do not fit its declared {info.architecture!r} ({info.embedding_dim}-D) network ({first})") from None
    return Embedder(module.eval(), info, device=device, precision=precision, batch_size=batch_size)
