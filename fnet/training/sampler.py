"""Identity-balanced batches (FaceNet section 3.2): P identities x K faces each, plus
optional random faces of anyone as extra negatives. Identities with one face only ever
appear as those extras. Deterministic per (seed, batch number), so a resumed run draws
exactly the batches an uninterrupted one would."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np

from fnet.errors import SettingsError


class IdentityBalancedSampler:
    def __init__(self, labels: Sequence[str], identities: int, per_identity: int, extra: int = 0, seed: int = 0,
                 start: int = 0, rank: int = 0, world: int = 1):
        groups = defaultdict(list)
        for row, label in enumerate(labels):
            groups[label].append(row)
        self.groups = [np.array(rows) for rows in groups.values() if len(rows) >= 2]
        if len(self.groups) < 2:
            raise SettingsError("training needs at least two identities with two or more faces each")
        self.rows = len(labels)
        self.identities = min(identities, len(self.groups))
        self.per_identity, self.extra, self.seed, self.start = per_identity, extra, seed, start
        self.rank, self.world = rank, world
        if self.size % world:
            raise SettingsError(f"a batch of {self.size} faces does not split evenly over {world} processes")

    def batch(self, number: int) -> list[int]:
        """Batch `number` of the run: the whole global batch, the same on every process."""
        rng = np.random.default_rng([self.seed, number])
        chosen = rng.choice(len(self.groups), self.identities, replace=False)
        rows = []
        for g in chosen:
            group = self.groups[g]
            rows.extend(rng.choice(group, min(self.per_identity, len(group)), replace=False).tolist())
        # extras, and fill-ins for identities with fewer than K faces: every batch has the same size
        rows.extend(rng.integers(0, self.rows, self.size - len(rows)).tolist())
        return rows

    @property
    def size(self) -> int:
        return self.identities * self.per_identity + self.extra

    def local(self, rows: list[int]) -> list[int]:
        """This process's share of a global batch (contiguous slices, as all_gather reassembles them)."""
        bounds = np.linspace(0, len(rows), self.world + 1).astype(int)
        return rows[bounds[self.rank] : bounds[self.rank + 1]]

    def __iter__(self) -> Iterator[list[int]]:
        number = self.start
        while True:
            yield self.local(self.batch(number))
            number += 1
