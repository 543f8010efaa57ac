"""Convert a frozen FaceNet Inception-ResNet-v1 GraphDef into an InceptionResnetV1 state dict.

The graph's batch norms are folded: each conv has ``weights`` (HWIO) and a
``Conv2D_bn_offset`` bias. They are unfolded into a conv without bias plus a batch norm
whose running statistics make it the identity-plus-offset in eval mode *and* close to it
in train mode (the folded conv outputs are already standardised), so fine-tuning starts
from the pretrained function.
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
import torch
from torch import nn

from fnet.core.convert.graphdef import Node, read_graphdef
from fnet.core.models.inception_resnet_v1 import ConvBN, InceptionResnetV1

_ROOT = "InceptionResnetV1/"
_STEM = {"Conv2d_1a_3x3": 0, "Conv2d_2a_3x3": 1, "Conv2d_2b_3x3": 2, "Conv2d_3b_1x1": 4, "Conv2d_4a_3x3": 5, "Conv2d_4b_3x3": 6}
_REPEATS = {"Repeat": "repeat", "Repeat_1": "repeat_1", "Repeat_2": "repeat_2"}


class ConversionError(RuntimeError):
    """The graph does not hold the weights of the expected architecture."""


def _block_path(parts: list[str]) -> tuple[str, list[str]]:
    """TF scope parts (below InceptionResnetV1/) -> (torch block path, remaining parts)."""
    head = parts[0]
    if head in _STEM:
        return f"stem.{_STEM[head]}", parts[1:]
    if head in _REPEATS:
        index = int(re.fullmatch(r"block\d+_(\d+)", parts[1]).group(1)) - 1
        return f"{_REPEATS[head]}.{index}", parts[2:]
    if head in ("Mixed_6a", "Mixed_7a", "Block8"):
        return head.lower(), parts[1:]
    raise ConversionError(f"unexpected scope {'/'.join(parts)}")


def _conv_scopes(nodes: dict[str, Node]) -> list[str]:
    return [n.name[: -len("/weights")] for n in nodes.values() if n.op == "Const" and n.name.endswith("/weights")]


def _torch_paths(model: nn.Module, scopes: list[str]) -> dict[str, str]:
    """Map each TF conv scope to the torch module path holding it.

    Within a branch, TF-slim names convs in execution order (0a < 0b < 0c < 1a), so the
    sorted names give the index inside the branch's nn.Sequential.
    """
    by_branch: dict[str, list[tuple[str, str]]] = defaultdict(list)
    paths = {}
    for scope in scopes:
        parts = scope[len(_ROOT) :].split("/")
        if parts[0] == "Bottleneck":
            continue
        block, rest = _block_path(parts)
        if len(rest) == 1:  # a block's own 1x1 "up" conv, or a stem conv
            paths[scope] = f"{block}.up" if rest[0] == "Conv2d_1x1" else block
        elif not rest:
            paths[scope] = block
        else:
            branch = int(rest[0].split("_")[1])
            by_branch[f"{block}.branches.{branch}"].append((rest[1], scope))
    modules = dict(model.named_modules())
    for branch, convs in by_branch.items():
        if isinstance(modules[branch], ConvBN):
            (_, scope), *extra = convs
            if extra:
                raise ConversionError(f"{branch}: one conv expected, found {len(convs)}")
            paths[scope] = branch
        else:
            for index, (_, scope) in enumerate(sorted(convs)):
                paths[scope] = f"{branch}.{index}"
    return paths


def convert(graph_bytes: bytes, embedding_dim: int = 512) -> dict[str, torch.Tensor]:
    """Read the GraphDef and return a state dict for ``InceptionResnetV1(embedding_dim)``."""
    nodes = read_graphdef(graph_bytes)
    model = InceptionResnetV1(embedding_dim)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assigned: set[str] = set()

    def put(key: str, value: np.ndarray) -> None:
        if key not in state:
            raise ConversionError(f"no parameter {key} in the torch model")
        tensor = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
        if tensor.shape != state[key].shape:
            raise ConversionError(f"{key}: graph shape {tuple(tensor.shape)} != model shape {tuple(state[key].shape)}")
        state[key] = tensor
        assigned.add(key)

    def const(name: str) -> np.ndarray:
        if name not in nodes:
            raise ConversionError(f"graph has no node {name}")
        return nodes[name].tensor()

    for scope, path in _torch_paths(model, _conv_scopes(nodes)).items():
        kernel = const(f"{scope}/weights").transpose(3, 2, 0, 1)  # HWIO -> OIHW
        if path.endswith(".up"):
            put(f"{path}.weight", kernel)
            put(f"{path}.bias", const(f"{scope}/biases"))
            continue
        eps = model.get_submodule(f"{path}.bn").eps
        put(f"{path}.conv.weight", kernel)
        put(f"{path}.bn.bias", const(f"{scope}/Conv2D_bn_offset"))
        put(f"{path}.bn.weight", np.ones(kernel.shape[0]))
        put(f"{path}.bn.running_mean", np.zeros(kernel.shape[0]))
        put(f"{path}.bn.running_var", np.full(kernel.shape[0], 1.0 - eps))

    bn = _ROOT + "Bottleneck/BatchNorm/"
    put("bottleneck.weight", const(_ROOT + "Bottleneck/weights").T)
    put("bottleneck_bn.weight", const(bn + "Const"))  # gamma: TF-slim's scale=False stores ones
    put("bottleneck_bn.bias", const(bn + "beta"))
    put("bottleneck_bn.running_mean", const(bn + "moving_mean"))
    put("bottleneck_bn.running_var", const(bn + "moving_variance"))

    missing = sorted(k for k in state if k not in assigned and not k.endswith("num_batches_tracked"))
    if missing:
        raise ConversionError(f"graph lacks {len(missing)} tensors, first: {missing[:3]}")
    return state
