"""What a model is: the metadata every checkpoint carries and every stage reads."""

from __future__ import annotations

import dataclasses
from typing import Any

from fnet import __version__
from fnet.crops import MODES as ALIGNMENTS
from fnet.errors import SettingsError

NORMALIZATIONS = ("fixed", "prewhiten", "dlib", "members")


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """Everything needed to use a model's embeddings correctly.

    threshold: squared L2 distance at or below which two faces are called the same person.
    normalization: 'fixed' is (x - 127.5) / 128; 'prewhiten' is per-image (x - mean) / std;
    'dlib' is (x - dlib's mean RGB) / 256; 'members': an ensemble, whose members each
    standardise their own view.
    alignment: how the model's faces are cut out unless a user says otherwise (fnet.crops.MODES).
    """

    name: str
    architecture: str
    embedding_dim: int
    input_size: int = 160
    normalization: str = "fixed"
    alignment: str = "crop"
    threshold: float = 1.0
    description: str = ""
    source: str = ""
    training: dict[str, Any] = dataclasses.field(default_factory=dict)
    fnet_version: str = __version__

    def __post_init__(self) -> None:
        # checkpoints come from other people: every field is checked before anything trusts it
        if self.normalization not in NORMALIZATIONS:
            raise SettingsError(f"normalization must be one of {NORMALIZATIONS}, not {self.normalization!r}")
        if self.alignment not in ALIGNMENTS:
            raise SettingsError(f"alignment must be one of {ALIGNMENTS}, not {self.alignment!r}")
        if not (isinstance(self.embedding_dim, int) and 0 < self.embedding_dim <= 65536):
            raise SettingsError(f"embedding_dim must be a whole number from 1 to 65,536, not {self.embedding_dim!r}")
        if not (isinstance(self.input_size, int) and 16 <= self.input_size <= 4096):
            raise SettingsError(f"input_size must be a whole number of pixels from 16 to 4,096, not {self.input_size!r}")
        if not (isinstance(self.threshold, int | float) and 0 < self.threshold < 4):
            raise SettingsError(
                f"threshold must be a squared L2 distance between unit vectors, above 0 and below 4, not {self.threshold!r} "
                "(at 4 or more every pair of faces would be called the same person)"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes: Any) -> ModelInfo:
        return dataclasses.replace(self, **changes)
