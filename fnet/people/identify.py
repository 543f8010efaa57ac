"""Open-set identification against the gallery: each face is named its nearest person, or unknown.

The verification threshold (is this pair one person?) is the wrong one here: a stranger is
named whenever any of N enrolled people lies within it, so the share of strangers named
(FPIR) grows with N (docs/search.md: 11% / 55% / 95% at the model's threshold with 10 / 100 /
1,000 LFW people). The gallery's threshold is therefore chosen for a target FPIR (1% by
default), from the gallery itself and from what was measured on LFW:

- with at least 1/FPIR people, estimated on the gallery (each enrolled person plays a stranger
  to the others; fnet.retrieval.recognition.threshold_for_fpir);
- for a built-in model, never looser than its LFW curve by gallery size (the loosest
  threshold that named at most 1% of LFW strangers: facenet-casia 0.95 / 0.80 / 0.65,
  dlib-resnet 0.143 / 0.113 / 0.0905 for 10 / 100 / 1,000 people, straight in log N between
  and beyond), which alone decides for small galleries;
- a model without that curve, in a gallery too small to estimate on, falls back to its
  verification threshold, and the answer says the FPIR is then unknown.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np

from fnet.retrieval.faiss_index import IndexParams, make_index, search
from fnet.retrieval.recognition import threshold_for_fpir

DEFAULT_FPIR = 0.01
# (people enrolled, loosest threshold naming <= 1% of strangers), measured on LFW by bench/open_set.py
LFW_CURVES = {
    "facenet-casia": ((10, 0.95), (100, 0.80), (1000, 0.65)),
    "dlib-resnet": ((10, 0.143), (100, 0.113), (1000, 0.0905)),
}


@dataclasses.dataclass(frozen=True)
class ThresholdChoice:
    value: float  # squared L2: a face farther than this from every enrolled face is unknown
    why: str  # one sentence for the user: where the value comes from
    fpir: float | None  # the share of strangers it aims to name; None: not calibrated

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def curve_threshold(model: str, people: int) -> float | None:
    """The LFW curve's threshold for a gallery of this size (None for a model without one)."""
    points = LFW_CURVES.get(model)
    if points is None:
        return None
    if people <= points[0][0]:
        return points[0][1]
    for (n0, t0), (n1, t1) in itertools.pairwise(points):
        if people <= n1:
            break
    return t0 + (t1 - t0) * (math.log(people) - math.log(n0)) / (math.log(n1) - math.log(n0))


def choose_threshold(model: str, verification: float, index, names: list[str], take, fpir: float = DEFAULT_FPIR) -> ThresholdChoice:
    """The gallery's identification threshold, and why. index / names / take: the enrolled faces."""
    people = len(set(names))
    curve = curve_threshold(model, people) if fpir == DEFAULT_FPIR else None
    estimate = None
    if people >= max(2, math.ceil(1 / fpir)):
        estimate = threshold_for_fpir(index, names, take, fpir)
    if estimate is not None and curve is not None and curve < estimate.threshold:
        return ThresholdChoice(curve, (
            f"{curve:.3f}: the LFW curve for {people:,} people at FPIR {fpir:.0%}, stricter than the estimate on this "
            f"gallery ({estimate.threshold:.3f})"), fpir)
    if estimate is not None:
        return ThresholdChoice(estimate.threshold, (
            f"{estimate.threshold:.3f}: estimated on this gallery's {estimate.people:,} people to name {fpir:.1%} of strangers"), fpir)
    if curve is not None:
        return ThresholdChoice(curve, (
            f"{curve:.3f}: measured on LFW to name at most {fpir:.0%} of strangers with {people:,} people enrolled "
            f"(too few here to estimate on the gallery: {math.ceil(1 / fpir)} needed)"), fpir)
    return ThresholdChoice(verification, (
        f"{verification:.3f}: the model's verification threshold; with {people:,} people, too few to estimate, and no "
        f"measured curve for {model!r}, the share of strangers named is unknown (enrol {math.ceil(1 / fpir)} people, "
        "or pass --threshold)"), None)


@dataclasses.dataclass(frozen=True)
class Identity:
    name: str | None  # None: unknown
    distance: float  # to the nearest enrolled face (squared L2)
    nearest: str | None  # the nearest person, named or not
    runner_up: str | None  # the second-nearest person
    margin: float  # runner-up's distance minus the nearest's (inf with one person enrolled)
    face_id: int  # the nearest enrolled face

    def to_dict(self) -> dict:
        return {"name": self.name, "distance": round(self.distance, 5), "nearest": self.nearest,
                "runner_up": self.runner_up, "margin": None if math.isinf(self.margin) else round(self.margin, 5)}


class Identifier:
    """The gallery's faces in a FAISS index: name query embeddings by their nearest person, or unknown."""

    def __init__(self, embeddings: np.ndarray, names: list[str], face_ids: np.ndarray):
        self.embeddings, self.names, self.face_ids = embeddings, np.asarray(names), face_ids
        self.index = make_index(IndexParams("flat"), embeddings.shape[1])
        if len(embeddings):
            self.index.add(np.ascontiguousarray(embeddings, np.float32))

    def threshold(self, model: str, verification: float, fpir: float = DEFAULT_FPIR) -> ThresholdChoice:
        return choose_threshold(model, verification, self.index, self.names.tolist(), lambda rows: self.embeddings[rows], fpir)

    def identify(self, queries: np.ndarray, threshold: float, k: int = 64) -> list[Identity]:
        if not len(queries):
            return []
        if not self.index.ntotal:
            return [Identity(None, math.inf, None, None, math.inf, -1) for _ in queries]
        distances, rows = search(self.index, queries, min(k, self.index.ntotal))
        return [self._one(d, r, threshold) for d, r in zip(distances, rows)]

    def _one(self, distances: np.ndarray, rows: np.ndarray, threshold: float) -> Identity:
        best: dict[str, float] = {}  # person -> nearest of their faces among the k (nearest first, so the first seen)
        for distance, row in zip(distances, rows):
            if row >= 0:
                best.setdefault(str(self.names[row]), float(distance))
        (nearest, d1), *rest = best.items()
        runner_up, d2 = rest[0] if rest else (None, math.inf)
        return Identity(nearest if d1 <= threshold else None, d1, nearest, runner_up, d2 - d1, int(self.face_ids[rows[0]]))
