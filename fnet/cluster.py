"""The cluster stage: an embeddings store -> faces grouped by person, in an output folder.

A first run groups every face. A later run on the same folder (after `fnet embed` or
`fnet cluster photos/` added faces to the store) only places the new faces: they join the
clusters of their close neighbours or form new ones, and old faces keep their cluster ids.
`recluster=True` groups everything again.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from fnet.clustering.assign import assign
from fnet.clustering.methods import ClusterSettings, cluster
from fnet.clustering.output import read_assignments, write_assignments
from fnet.io.store import Store

SETTING_KEYS = ("method", "threshold", "k", "n_clusters", "min_size", "seed")


@dataclasses.dataclass
class ClusterReport:
    faces: int = 0
    new_faces: int = 0  # placed by this run (all of them on a first run)
    joined: int = 0  # new faces that joined an existing cluster (incremental runs)
    clusters: int = 0
    singletons: int = 0
    largest: int = 0
    incremental: bool = False
    settings: dict = dataclasses.field(default_factory=dict)


def resolve_settings(chosen: dict, previous: dict | None, store_attrs: dict) -> ClusterSettings:
    """Given options first, then the previous run's (an incremental run keeps its method), then
    the defaults; the threshold defaults to the model's verification threshold."""
    values = {k: v for k, v in (previous or {}).items() if k in SETTING_KEYS}
    values.update({k: v for k, v in chosen.items() if v is not None})
    values.setdefault("threshold", float(store_attrs["threshold"]))
    return ClusterSettings(**values)


def cluster_store(store_path: Path, out: Path, chosen: dict | None = None, recluster: bool = False, on_progress=None) -> tuple[ClusterReport, np.ndarray]:
    """Cluster the store's faces into out/ (clusters.csv, clusters.json); returns (report, labels)."""
    with Store(store_path) as store:
        previous = None if recluster else read_assignments(out, store)
        settings = resolve_settings(chosen or {}, previous[1]["settings"] if previous else None, store.attrs)
        embeddings = store.embeddings()
        if previous is None:
            labels = cluster(embeddings, settings, on_progress)
            joined = 0
        else:
            old_labels = previous[0]
            old, new = embeddings[: len(old_labels)], embeddings[len(old_labels) :]
            new_labels = assign(old, old_labels, new, settings, on_progress)
            joined = int((new_labels <= old_labels.max(initial=-1)).sum())
            labels = np.concatenate([old_labels, new_labels])
        recorded = {k: getattr(settings, k) for k in SETTING_KEYS}
        meta = write_assignments(out, store, labels, recorded)
    report = ClusterReport(
        faces=meta["faces"], new_faces=len(labels) - (len(previous[0]) if previous else 0), joined=joined,
        clusters=meta["clusters"], singletons=meta["singletons"], largest=meta["largest"],
        incremental=previous is not None, settings=recorded,
    )
    return report, labels
