"""Registry of network architectures: ``create_model(name, **kwargs)`` as in timm."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from fnet.core.models.dlib_resnet import DlibResNet
from fnet.core.models.inception_resnet_v1 import InceptionResnetV1, fuse_conv_bn
from fnet.core.models.small import SmallFaceNet

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "inception_resnet_v1": InceptionResnetV1,
    "dlib_resnet": DlibResNet,
    "small": SmallFaceNet,
}


def create_model(architecture: str, **kwargs) -> nn.Module:
    """A freshly initialised network, e.g. ``create_model("inception_resnet_v1", embedding_dim=128)``."""
    try:
        factory = ARCHITECTURES[architecture]
    except KeyError:
        raise ValueError(f"unknown architecture {architecture!r}; known: {', '.join(sorted(ARCHITECTURES))}") from None
    return factory(**kwargs)


__all__ = ["ARCHITECTURES", "DlibResNet", "InceptionResnetV1", "SmallFaceNet", "create_model", "fuse_conv_bn"]
