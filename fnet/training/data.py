"""Training faces: an aligned tree (identity/face.png) as a torch Dataset, with the
standard augmentations (mirror, small random crops, colour jitter) done per face from a
seed, so that a batch is the same whenever it is drawn (resume, several processes)."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from fnet.errors import SettingsError
from fnet.io.images import ImageError, load_image
from fnet.io.tree import Item, tree_items


@dataclasses.dataclass(frozen=True)
class Augment:
    flip: bool = True
    crop: float = 0.9  # random square crops of at least this fraction of the side (1 = off)
    jitter: float = 0.1  # brightness / contrast / saturation change of up to +-this (0 = off)


def split_identities(items: list[Item], held_out: float, seed: int = 0) -> tuple[list[Item], list[Item]]:
    """(training, held-out) faces; the held-out share of identities (with >= 2 faces) never trains."""
    counts: dict[str, int] = {}
    for item in items:
        counts[item.label] = counts.get(item.label, 0) + 1
    people = sorted(p for p, n in counts.items() if n >= 2)
    rng = np.random.default_rng(seed)
    held = set(rng.choice(people, round(held_out * len(people)), replace=False).tolist()) if held_out else set()
    return [i for i in items if i.label not in held], [i for i in items if i.label in held]


class FaceFolder(torch.utils.data.Dataset):
    """Faces as float CHW tensors in 0..255 at `size`; indexed by (row, augmentation seed)."""

    def __init__(self, items: list[Item], size: int, augment: Augment | None = None):
        self.items, self.size, self.augment = items, size, augment
        self.labels = [item.label for item in items]
        names = sorted(set(self.labels))
        self.label_ids = torch.tensor([names.index(label) for label in self.labels]) if names else torch.zeros(0)

    @classmethod
    def from_tree(cls, root: Path, size: int, augment: Augment | None = None) -> FaceFolder:
        items = [item for item in tree_items(root) if item.label]
        if not items:
            raise SettingsError(f"{root}: no faces in identity folders (expected {root}/PERSON/FACE.png from `fnet align`)")
        return cls(items, size, augment)

    def __len__(self) -> int:
        return len(self.items)

    def load(self, row: int) -> torch.Tensor:
        """The face at its stored size, CHW float; raises ImageError naming the file."""
        return torch.from_numpy(np.array(load_image(self.items[row].path))).permute(2, 0, 1).float()  # a writable copy

    def _substitute(self, row: int) -> int:
        """Another face of the same person, for a file that cannot be read."""
        same = [r for r, label in enumerate(self.labels) if label == self.labels[row] and r != row]
        return same[row % len(same)] if same else (row + 1) % len(self.items)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int]:
        row, seed = key
        try:
            x = self.load(row)
        except ImageError as err:
            warnings.warn(f"{err}; training on another face of {self.labels[row]!r} instead", stacklevel=1)
            row = self._substitute(row)
            x = self.load(row)
        if self.augment is not None:
            x = augment(x, self.augment, torch.Generator().manual_seed(seed))
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x[None], size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)[0]
        return x, int(self.label_ids[row])


def augment(x: torch.Tensor, a: Augment, g: torch.Generator) -> torch.Tensor:
    """One face (CHW, 0..255) mirrored, cropped and colour-jittered at random."""
    r = torch.rand(6, generator=g)
    if a.flip and r[0] < 0.5:
        x = x.flip(2)
    if a.crop < 1.0:
        side = round(x.shape[1] * (a.crop + (1 - a.crop) * float(r[1])))
        top = int(float(r[2]) * (x.shape[1] - side))
        left = int(float(r[3]) * (x.shape[2] - side))
        x = x[:, top : top + side, left : left + side]
    if a.jitter > 0:
        brightness, contrast = 1 + a.jitter * (2 * float(r[4]) - 1), 1 + a.jitter * (2 * float(r[5]) - 1)
        mean = x.mean()
        x = ((x - mean) * contrast + mean) * brightness
        gray = x.mean(0, keepdim=True)
        x = gray + (x - gray) * (1 + a.jitter * (2 * float(torch.rand(1, generator=g)) - 1))
    return x.clamp(0, 255)
