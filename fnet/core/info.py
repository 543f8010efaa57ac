"""What a model is: the metadata every checkpoint carries and every stage reads."""

from __future__ import annotations

import dataclasses
from typing import Any

from fnet import __version__

NORMALIZATIONS = ("fixed", "prewhiten")


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """Everything needed to use a model's embeddings correctly.

    threshold: squared L2 distance at or below which two faces are called the same person.
    normalization: 'fixed' is (x - 127.5) / 128; 'prewhiten' is per-image (x - mean) / std.
    """

    name: str
    architecture: str
    embedding_dim: int
    input_size: int = 160
    normalization: str = "fixed"
    threshold: float = 1.0
    description: str = ""
    source: str = ""
    training: dict[str, Any] = dataclasses.field(default_factory=dict)
    fnet_version: str = __version__

    def __post_init__(self) -> None:
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, not {self.normalization!r}")
        if self.embedding_dim <= 0 or self.input_size <= 0:
            raise ValueError("embedding_dim and input_size must be positive")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes: Any) -> ModelInfo:
        return dataclasses.replace(self, **changes)
