"""dlib's serialised networks (.dat) -> the tensors of ``DlibResNet``, without dlib.

dlib writes a network from the loss layer inwards: each layer's version number, then, from
the input layer outwards, each layer's details (a name such as ``con_4`` followed by its
fields) and the layer's own state (three flags, three tensors that are empty in a saved
model). Numbers are dlib's variable-length integers (a length byte, its top bit the sign,
then little-endian bytes); floating-point fields are a mantissa and a power of two; tensor
data is raw little-endian float32. Only the layer kinds of the face-recognition ResNet are
read; anything else is refused by name.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from fnet.errors import FnetError


class DlibFormatError(FnetError, ValueError):
    """A file that is not the dlib network fnet converts."""


@dataclasses.dataclass
class Layer:
    kind: str  # con, affine, relu, max_pool, avg_pool, add_prev, fc
    arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    numbers: tuple[int, ...] = ()  # con and pools: rows, columns, strides, paddings


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise DlibFormatError("the file ends inside the network")
        self.pos += 1
        return self.data[self.pos - 1]

    def integer(self) -> int:
        head = self.byte()
        size = head & 0x0F
        if size > 8:
            raise DlibFormatError(f"byte {self.pos - 1}: not a dlib integer")
        value = int.from_bytes(self.take(size), "little")
        return -value if head & 0x80 else value

    def real(self) -> float:
        mantissa, exponent = self.integer(), self.integer()
        return mantissa * 2.0**exponent

    def text(self) -> str:
        return self.take(self.integer()).decode("ascii", "replace")

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise DlibFormatError("the file ends inside the network")
        self.pos += size
        return self.data[self.pos - size : self.pos]

    def flag(self) -> bool:
        value = self.byte()
        if value not in b"01":
            raise DlibFormatError(f"byte {self.pos - 1}: expected a flag, found {value}")
        return value == ord("1")

    def tensor(self) -> np.ndarray:
        if (version := self.integer()) != 2:
            raise DlibFormatError(f"byte {self.pos}: tensor version {version}, expected 2")
        shape = tuple(self.integer() for _ in range(4))
        count = int(np.prod(shape))
        return np.frombuffer(self.take(4 * count), "<f4").reshape(shape)

    def alias(self) -> tuple[int, ...]:
        if (version := self.integer()) != 1:
            raise DlibFormatError(f"byte {self.pos}: alias tensor version {version}, expected 1")
        return tuple(self.integer() for _ in range(4))


def _details(reader: _Reader, name: str) -> Layer:
    """One layer's fields, after its name."""
    if name == "con_4":
        params = reader.tensor()
        filters_count, rows, cols, stride_y, stride_x, pad_y, pad_x = (reader.integer() for _ in range(7))
        filters, _ = reader.alias(), reader.alias()  # the filters, then the biases behind them
        [reader.real() for _ in range(4)]  # learning-rate and weight-decay multipliers
        flat, size = params.ravel(), int(np.prod(filters))
        return Layer(
            "con",
            {"weight": flat[:size].reshape(filters), "bias": flat[size : size + filters_count]},
            (rows, cols, stride_y, stride_x, pad_y, pad_x),
        )
    if name == "affine_":
        params = reader.tensor().ravel()
        gamma, _ = reader.alias(), reader.alias()
        reader.integer()  # mode: per channel
        count = int(np.prod(gamma))
        return Layer("affine", {"gamma": params[:count], "beta": params[count : 2 * count]})
    if name in ("max_pool_2", "avg_pool_2"):
        return Layer(name.removesuffix("_2"), numbers=tuple(reader.integer() for _ in range(6)))
    if name in ("relu_", "add_prev_"):
        return Layer(name.rstrip("_"))
    if name == "fc_2":
        outputs, inputs = reader.integer(), reader.integer()
        params = reader.tensor().ravel()
        reader.alias(), reader.alias()
        if reader.integer() != 1:  # dlib's FC_NO_BIAS
            raise DlibFormatError("an fc layer with a bias; dlib's face model has none")
        [reader.real() for _ in range(4)]
        return Layer("fc", {"weight": params[: inputs * outputs].reshape(inputs, outputs).T})
    raise DlibFormatError(f"a dlib layer fnet does not read: {name!r}")


def read_layers(data: bytes) -> tuple[dict, list[Layer]]:
    """(the input layer's settings, the layers from the input outwards)."""
    reader = _Reader(data)
    if reader.integer() != 1 or reader.text() != "loss_metric_2":
        raise DlibFormatError("not a dlib network with a metric loss (dlib_face_recognition_resnet_model_v1)")
    reader.real(), reader.real()  # margin, distance threshold (training only)
    while (head := reader.data[reader.pos : reader.pos + 2]) in (b"\x01\x01", b"\x01\x02", b"\x01\x03"):
        reader.integer()  # a layer's version; its details follow once every layer has opened
    if reader.text() != "input_rgb_image_sized":
        raise DlibFormatError(f"byte {reader.pos}: expected dlib's input_rgb_image_sized layer (found {head!r})")
    mean_rgb = tuple(reader.real() for _ in range(3))
    size = (reader.integer(), reader.integer())
    layers = []
    while reader.pos < len(reader.data):
        layers.append(_details(reader, reader.text()))
        reader.flag(), reader.flag(), reader.flag()  # set up, gradient stale, output disabled
        reader.tensor(), reader.tensor(), reader.tensor()  # empty buffers
        if len(layers) == 1:
            reader.integer()  # the input layer's sample expansion factor
    return {"mean_rgb": mean_rgb, "size": size}, layers


def convert(data: bytes) -> dict[str, torch.Tensor]:
    """The state dict of ``DlibResNet`` from dlib_face_recognition_resnet_model_v1.dat.

    Each affine layer (x * gamma + beta per channel) is folded into the convolution before it.
    """
    from fnet.core.models.dlib_resnet import DLIB_MEAN_RGB, DlibResNet

    settings, layers = read_layers(data)
    if settings["size"] != (150, 150) or not np.allclose(settings["mean_rgb"], DLIB_MEAN_RGB, atol=1e-3):
        raise DlibFormatError(f"unexpected input layer {settings}")
    convs = []
    for index, layer in enumerate(layers):
        if layer.kind == "con":
            affine = layers[index + 1]
            if affine.kind != "affine":
                raise DlibFormatError(f"layer {index}: a convolution without its affine layer")
            gamma, beta = affine.arrays["gamma"], affine.arrays["beta"]
            convs.append((layer.arrays["weight"] * gamma[:, None, None, None], layer.arrays["bias"] * gamma + beta))
    names = ["stem"] + [f"blocks.{b}.conv{c}" for b in range(len(convs) // 2) for c in (1, 2)]
    (fc,) = [layer for layer in layers if layer.kind == "fc"]
    state = {f"{name}.{part}": torch.from_numpy(np.ascontiguousarray(array, np.float32))
             for name, (weight, bias) in zip(names, convs) for part, array in (("weight", weight), ("bias", bias))}
    state["fc.weight"] = torch.from_numpy(np.ascontiguousarray(fc.arrays["weight"], np.float32))
    expected = DlibResNet().state_dict()
    if {k: tuple(v.shape) for k, v in state.items()} != {k: tuple(v.shape) for k, v in expected.items()}:
        raise DlibFormatError("the layers do not have the shapes of dlib's face-recognition ResNet")
    return state
