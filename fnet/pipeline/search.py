"""The search stage, recognition as k-NN: query faces -> nearest stored faces -> an identity by weighted vote, or unknown.

``open_gallery`` reads an index with its store's identities (and, asked for a false positive
rate, estimates the threshold on it); ``search_photos`` aligns and embeds query photos with a
pipeline of the gallery's model and names each one.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fnet.errors import SettingsError
from fnet.io.stores import open_store, store_path
from fnet.io.tree import Item
from fnet.pipeline.embed import EmbedReport, embed_tree
from fnet.pipeline.index import load_index, search

if TYPE_CHECKING:
    from fnet.pipeline.build import Pipeline


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


@dataclasses.dataclass
class Gallery:
    """An index made by `fnet index`, with its store's identities and paths."""

    path: Path
    index: Any  # the FAISS index; ids are store rows
    meta: dict  # the index's metadata: model, kind, rows, threshold, store
    labels: list[str]
    paths: list[str]
    stranger: StrangerThreshold | None = None  # estimated when open_gallery was given a false positive rate

    @property
    def model(self) -> str:
        return self.meta["model"]

    def check_model(self, name: str) -> None:
        """Queries must be embedded by the model that made the gallery: another one is refused."""
        if name != self.model:
            raise SettingsError(f"{self.path}: holds {self.model!r} embeddings; a query embedded with {name!r} cannot be compared")


def open_gallery(index_path: str | Path, store: str | Path | None = None, fpir: float | None = None) -> Gallery:
    """The index, its store's labels and paths (store: where the store is now, if it moved since indexing).

    fpir: also estimate the threshold that names about this share of strangers (see threshold_for_fpir).
    """
    if fpir is not None and not 0 < fpir < 1:
        raise SettingsError(f"--fpir {fpir:g}: a share of strangers, between 0 and 1 (e.g. 0.01)")
    faiss_index, meta = load_index(index_path)
    with open_store(store or meta["store"]) as stored:
        labels, paths = stored.labels(), stored.paths()
        stranger = None if fpir is None else threshold_for_fpir(faiss_index, labels, stored.take, fpir)
    return Gallery(Path(index_path), faiss_index, meta, labels, paths, stranger)


@dataclasses.dataclass
class SearchRun:
    queries: list[str]  # the photos whose face was embedded, as given
    results: list[Recognition]  # one per query
    threshold: float
    report: EmbedReport  # what became of every photo (unreadable, no face)


def search_photos(
    pipeline: Pipeline, query: str | Path, gallery: Gallery, k: int = 5, threshold: float | None = None,
    aligned: bool = False, on_start=None, on_item=None,
) -> SearchRun:
    """Recognise the face (the most central large one) of a photo, or of every photo in a folder.

    threshold: default the stranger estimate of the gallery when it has one, else the model's.
    """
    gallery.check_model(pipeline.info.name)
    query = Path(query)
    if not query.exists():
        raise SettingsError(f"{query}: no such file or folder")
    if threshold is None:
        threshold = gallery.stranger.threshold if gallery.stranger else float(gallery.meta["threshold"])
    root = query if query.is_dir() else query.parent
    items = None if query.is_dir() else [Item(query, query.name, "")]
    aligner = None if aligned else pipeline.aligner("center")
    queries, results = [], []
    with tempfile.TemporaryDirectory(prefix="fnet-search-") as tmp:  # the embed stage's store: resumable, batched
        embedded_path = store_path(tmp, "queries")
        report = embed_tree(root, embedded_path, pipeline.embedder, aligner, items=items, on_start=on_start, on_item=on_item)
        if report.total:
            with open_store(embedded_path) as embedded:
                for block in embedded.blocks():
                    queries += [str(root / rel) for rel in block.paths]
                    results += recognize(block.embeddings, gallery.index, gallery.labels, gallery.paths, k, threshold)
    return SearchRun(queries, results, threshold, report)
