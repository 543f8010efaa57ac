"""Recognition as k-NN: query faces -> nearest stored faces -> an identity by weighted vote, or unknown."""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import numpy as np

from fnet.index import search


@dataclasses.dataclass(frozen=True)
class Match:
    row: int
    distance: float  # squared L2
    path: str
    label: str


@dataclasses.dataclass(frozen=True)
class Recognition:
    identity: str  # "unknown" when no stored face is within the threshold
    score: float  # share of the vote the identity got, 0..1
    matches: list[Match]

    @property
    def known(self) -> bool:
        return self.identity != UNKNOWN

    def to_dict(self) -> dict:
        return {"identity": self.identity, "score": round(self.score, 4), "matches": [dataclasses.asdict(m) for m in self.matches]}


UNKNOWN = "unknown"


def vote(matches: list[Match], threshold: float) -> tuple[str, float]:
    """Weighted vote of the matches within the threshold; nearer matches weigh more (threshold - d).

    A match without a label votes for its own path, so an unlabelled store still names the face.
    """
    weights: dict[str, float] = defaultdict(float)
    for match in matches:
        if match.distance <= threshold:
            weights[match.label or match.path] += threshold - match.distance + 1e-6
    if not weights:
        return UNKNOWN, 0.0
    identity = max(weights, key=weights.get)
    return identity, weights[identity] / sum(weights.values())


def recognize(embeddings: np.ndarray, index, labels: list[str], paths: list[str], k: int, threshold: float) -> list[Recognition]:
    """One Recognition per query embedding."""
    distances, ids = search(index, embeddings, k)
    results = []
    for row_d, row_ids in zip(distances, ids):
        matches = [Match(int(i), float(d), paths[i], labels[i]) for d, i in zip(row_d, row_ids) if i >= 0]
        identity, score = vote(matches, threshold)
        results.append(Recognition(identity, score, matches))
    return results
