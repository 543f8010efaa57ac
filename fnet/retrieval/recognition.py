"""Recognition as k-NN: query faces -> nearest stored faces -> an identity by weighted vote, or unknown;
and the threshold that names a chosen share of strangers, estimated on the gallery itself."""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from fnet.errors import SettingsError
from fnet.retrieval.faiss_index import search


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


def nearest_matches(embeddings: np.ndarray, index, labels: list[str], paths: list[str], k: int) -> list[list[Match]]:
    """The k nearest stored faces of each query embedding, nearest first."""
    distances, ids = search(index, embeddings, k)
    return [
        [Match(int(i), float(d), paths[i], labels[i]) for d, i in zip(row_d, row_ids) if i >= 0]
        for row_d, row_ids in zip(distances, ids)
    ]


def recognize(embeddings: np.ndarray, index, labels: list[str], paths: list[str], k: int, threshold: float) -> list[Recognition]:
    """One Recognition per query embedding."""
    return [Recognition(*vote(matches, threshold), matches) for matches in nearest_matches(embeddings, index, labels, paths, k)]


@dataclasses.dataclass(frozen=True)
class StrangerThreshold:
    threshold: float
    fpir: float  # share of the enrolled people who, playing strangers, would get a name at it
    people: int  # enrolled people the estimate came from


def threshold_for_fpir(
    index, labels: list[str], take: Callable[[np.ndarray], np.ndarray], fpir: float, max_people: int = 5000, seed: int = 0
) -> StrangerThreshold:
    """The threshold at which about `fpir` of strangers get a name, estimated on the gallery itself.

    Each enrolled person (one photo each, at most max_people of them) plays a stranger to
    the others: a stranger is named when any enrolled face lies within the threshold, so
    the threshold is put between the distances to the nearest other person that a share
    fpir of them fall under. labels: the indexed faces' identities; take(rows): their
    embeddings (e.g. Store.take). Measured on LFW (bench/open_set.py): asked for 1%, it named
    1.60% / 1.05% of real strangers with 100 / 1,000 people enrolled.
    """
    labels = np.asarray(labels)
    if not len(labels) or (labels == "").any():
        raise SettingsError("estimating a false positive rate needs identity labels (enrol faces in one folder per person)")
    rows = np.sort(np.unique(labels, return_index=True)[1])  # each person's first photo, in store order
    needed = math.ceil(1 / fpir)
    if len(rows) < max(needed, 2):
        raise SettingsError(
            f"{len(rows)} people enrolled: too few to estimate a false positive rate of {fpir:g} "
            f"(at least {max(needed, 2)} needed); pass --threshold instead (docs/search.md has a table by gallery size)"
        )
    if len(rows) > max_people:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_people, replace=False))
    nearest = np.sort(_nearest_other_person(index, take(rows), labels[rows], labels))
    named = math.floor(fpir * len(nearest))
    return StrangerThreshold(float(nearest[named - 1] + nearest[named]) / 2, named / len(nearest), len(nearest))


def _nearest_other_person(index, probes: np.ndarray, own: np.ndarray, labels: np.ndarray, k: int = 16) -> np.ndarray:
    """Squared distance from each probe to the nearest stored face with another label."""
    result = np.full(len(probes), np.nan)
    todo = np.arange(len(probes))
    while len(todo):
        k = min(k, index.ntotal)
        distances, ids = search(index, probes[todo], k)
        other = (ids >= 0) & (labels[np.maximum(ids, 0)] != own[todo, None])
        found = other.any(1)
        result[todo[found]] = distances[found, other[found].argmax(1)]
        if k == index.ntotal:  # nobody else within reach: the farthest seen bounds it from below
            result[todo[~found]] = distances[~found, -1]
            break
        todo, k = todo[~found], k * 4  # people with more than k photos of their own: look further
    return result
