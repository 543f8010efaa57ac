"""A minimal reader for frozen TensorFlow GraphDef files (protobuf wire format).

Only what weight conversion needs: node names, ops, inputs and the Const tensors.
Reading the wire format directly keeps TensorFlow and protobuf out of fnet's
dependencies; the schema is tensorflow/core/framework/{graph,node_def,attr_value,
tensor,tensor_shape}.proto.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

# TensorFlow DataType enum values -> numpy dtypes (the ones frozen models use).
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 9: np.int64, 10: np.bool_, 19: np.float16}


class GraphDefError(ValueError):
    """The file is not a GraphDef this reader understands."""


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise GraphDefError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """Yield (field number, wire type, value) for each field of one message."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        else:
            raise GraphDefError(f"unsupported wire type {wire}")
        if pos > end:
            raise GraphDefError("truncated message")
        yield number, wire, value


@dataclasses.dataclass
class Node:
    name: str
    op: str
    inputs: list[str]
    attrs: dict[str, memoryview]

    def tensor(self) -> np.ndarray:
        """The value of a Const node."""
        if "value" not in self.attrs:
            raise GraphDefError(f"node {self.name} ({self.op}) holds no tensor")
        for number, _, value in _fields(self.attrs["value"]):
            if number == 8:  # AttrValue.tensor
                return _decode_tensor(value)
        raise GraphDefError(f"node {self.name}: attribute 'value' is not a tensor")


def _decode_shape(buf: memoryview) -> tuple[int, ...]:
    dims = []
    for number, _, dim in _fields(buf):
        if number == 2:  # TensorShapeProto.dim
            size = 0
            for n, _, v in _fields(dim):
                if n == 1:
                    size = v if v < 1 << 63 else v - (1 << 64)
            dims.append(size)
    return tuple(dims)


def _decode_tensor(buf: memoryview) -> np.ndarray:
    dtype, shape, content, floats, ints = None, (), None, [], []
    for number, wire, value in _fields(buf):
        if number == 1:
            dtype = _DTYPES.get(value)
            if dtype is None:
                raise GraphDefError(f"unsupported tensor dtype {value}")
        elif number == 2:
            shape = _decode_shape(value)
        elif number == 4:
            content = bytes(value)
        elif number == 5:  # float_val, packed or not
            floats.extend(np.frombuffer(value, "<f4") if wire == 2 else [np.uint32(value).view(np.float32)])
        elif number in (7, 10):  # int_val / int64_val
            ints.extend(_unpack_varints(value) if wire == 2 else [value])
    if dtype is None:
        raise GraphDefError("tensor without dtype")
    count = int(np.prod(shape)) if shape else 1
    if content is not None:
        array = np.frombuffer(content, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
    else:
        values = floats if floats else ints
        array = np.asarray(values, dtype=dtype)
        if array.size == 1 and count > 1:  # TF stores a splat as a single value
            array = np.full(count, array[0], dtype=dtype)
    return array.reshape(shape)


def _unpack_varints(buf: memoryview) -> list[int]:
    out, pos = [], 0
    while pos < len(buf):
        value, pos = _varint(buf, pos)
        out.append(value)
    return out


def _decode_node(buf: memoryview) -> Node:
    name, op, inputs, attrs = "", "", [], {}
    for number, _, value in _fields(buf):
        if number == 1:
            name = bytes(value).decode()
        elif number == 2:
            op = bytes(value).decode()
        elif number == 3:
            inputs.append(bytes(value).decode())
        elif number == 5:  # map<string, AttrValue> entry
            key, attr = "", memoryview(b"")
            for n, _, v in _fields(value):
                if n == 1:
                    key = bytes(v).decode()
                elif n == 2:
                    attr = v
            attrs[key] = attr
    return Node(name, op, inputs, attrs)


def read_graphdef(data: bytes) -> dict[str, Node]:
    """Parse a serialized GraphDef into {node name: Node}, in file order."""
    nodes = {}
    for number, wire, value in _fields(memoryview(data)):
        if number == 1 and wire == 2:
            node = _decode_node(value)
            nodes[node.name] = node
    if not nodes:
        raise GraphDefError("no nodes found: not a TensorFlow GraphDef")
    return nodes
