"""The cluster stage: an embeddings store -> faces grouped by person, in an output folder.

A first run groups every face. A later run on the same folder (after `fnet embed` or
`fnet cluster photos/` added faces to the store) only places the new faces: they join the
clusters of their close neighbours or form new ones, and old faces keep their cluster ids.
`recluster=True` groups everything again. ``cluster_photos`` is the whole command: photos
or a store in, the folder's clusters, people/ folders and contact sheet out, one writer at a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fnet.clustering.assign import assign
from fnet.clustering.methods import METHODS, ClusterSettings, cluster
from fnet.clustering.output import (
    CSV,
    FOLDER_MODES,
    JSON,
    PEOPLE,
    cluster_names,
    read_assignments,
    write_assignments,
    write_crops,
    write_links,
)
from fnet.clustering.sheet import SHEET, write_sheet
from fnet.errors import SettingsError
from fnet.io.lock import exclusive
from fnet.io.stores import open_store
from fnet.io.stores import store_path as store_path_for
from fnet.pipeline.embed import EmbedReport, embed_tree

if TYPE_CHECKING:
    from fnet.pipeline.build import Pipeline

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
    names: int = 0  # clusters with a name given by `fnet people name`


def resolve_settings(chosen: dict, previous: dict | None, store_attrs: dict) -> ClusterSettings:
    """Given options first, then the previous run's (an incremental run keeps its method), then
    the defaults; the threshold defaults to the model's verification threshold."""
    values = {k: v for k, v in (previous or {}).items() if k in SETTING_KEYS}
    values.update({k: v for k, v in chosen.items() if v is not None})
    values.setdefault("threshold", float(store_attrs["threshold"]))
    return ClusterSettings(**values)


def cluster_store(store_path: Path, out: Path, chosen: dict | None = None, recluster: bool = False, on_progress=None) -> tuple[ClusterReport, np.ndarray]:
    """Cluster the store's faces into out/ (clusters.csv, clusters.json); returns (report, labels)."""
    report, labels, _ = _cluster_named(store_path, out, chosen, recluster, on_progress)
    return report, labels


def _cluster_named(store_path: Path, out: Path, chosen: dict | None, recluster: bool, on_progress) -> tuple[ClusterReport, np.ndarray, dict[int, str]]:
    """cluster_store, also returning the names the clusters carry (cluster number -> name)."""
    with open_store(store_path) as store:
        previous = None if recluster else read_assignments(out, store)
        settings = resolve_settings(chosen or {}, previous[1]["settings"] if previous else None, store.attrs)
        embeddings = store.embeddings()
        if previous is None:
            labels = cluster(embeddings, settings, on_progress)
            joined = 0
            names = carried_names(out, store, labels) if recluster else {}
        else:
            names = cluster_names(previous[1])
            old_labels = previous[0]
            old, new = embeddings[: len(old_labels)], embeddings[len(old_labels) :]
            new_labels = assign(old, old_labels, new, settings, on_progress)
            joined = int((new_labels <= old_labels.max(initial=-1)).sum())
            labels = np.concatenate([old_labels, new_labels])
        recorded = {k: getattr(settings, k) for k in SETTING_KEYS}
        meta = write_assignments(out, store, labels, recorded, names)
    report = ClusterReport(
        faces=meta["faces"], new_faces=len(labels) - (len(previous[0]) if previous else 0), joined=joined,
        clusters=meta["clusters"], singletons=meta["singletons"], largest=meta["largest"],
        incremental=previous is not None, settings=recorded, names=len(names),
    )
    return report, labels, names


def carried_names(out: Path, store, labels: np.ndarray) -> dict[int, str]:
    """After --recluster: each named old cluster's name goes to the new cluster holding most of its faces
    (a new cluster claimed by two names keeps the larger claim)."""
    try:
        previous = read_assignments(out, store)
    except Exception:  # noqa: BLE001 (an unreadable old run has no names to carry)
        return {}
    if previous is None:
        return {}
    old_labels, meta = previous
    claims: dict[int, tuple[int, str]] = {}
    for number, name in cluster_names(meta).items():
        rows = np.flatnonzero(old_labels == number)
        if len(rows):
            target, count = np.unique(labels[rows], return_counts=True)
            best = int(target[count.argmax()])
            if count.max() > claims.get(best, (0, ""))[0]:
                claims[best] = (int(count.max()), name)
    return {cluster: name for cluster, (_, name) in claims.items()}


@dataclasses.dataclass
class ClusterRun:
    report: ClusterReport
    written: list[str]  # the files and folders written into the output folder
    embedded: EmbedReport | None = None  # when the source was a folder of photos or crops

    @property
    def failed(self) -> bool:
        return bool(self.embedded and self.embedded.failed)


def cluster_photos(
    pipeline: Pipeline | None,
    source: str | Path,
    output: str | Path,
    chosen: dict | None = None,
    recluster: bool = False,
    folders: str = "none",
    sheet: bool = True,
    sheet_clusters: int = 200,
    aligned: bool = False,
    retry_failed: bool = False,
    detect_batch: int = 8,
    on_start: Callable[[int], None] | None = None,
    on_item=None,
    on_progress: Callable[[int], None] | None = None,
    on_problem: Callable[[str], None] | None = None,
) -> ClusterRun:
    """Group the faces of a folder (every face of every photo, or aligned crops) or of a store, into output/.

    chosen: method, threshold, k, n_clusters, min_size (None: the previous run's, else the defaults).
    folders: none, links (people/person-NNNN/ of symbolic links to the photos) or crops (face JPEGs).
    A folder source is embedded into output/faces.h5 (the default store format) first (resumable); it needs the pipeline.
    """
    source, output, chosen = Path(source), Path(output), chosen or {}
    if chosen.get("method") is not None and chosen["method"] not in METHODS:
        raise SettingsError(f"--method must be one of {', '.join(METHODS)}")
    if folders not in FOLDER_MODES:
        raise SettingsError(f"--folders must be one of {', '.join(FOLDER_MODES)}")
    embedded = None
    if source.is_dir():
        aligner = None if aligned else pipeline.aligner("all")
        store_path = store_path_for(output, "faces")
        embedded = embed_tree(
            source, store_path, pipeline.embedder, aligner, retry_failed=retry_failed, detect_batch=detect_batch,
            on_start=on_start, on_item=on_item, exclude=(output,),
        )
    elif source.is_file():
        store_path = source
    else:
        raise SettingsError(f"{source}: no such folder or store")
    with exclusive(output, folder=True):  # one writer per cluster folder: its files change together
        report, labels, names = _cluster_named(store_path, output, chosen, recluster, on_progress)
        written = _extras(store_path, output, labels, names, folders, sheet, sheet_clusters, f"Faces by person: {source.name}", on_problem)
    return ClusterRun(report, written, embedded)


def _extras(
    store_path: Path, output: Path, labels, names: dict[int, str], folders: str, sheet: bool, sheet_clusters: int, title: str, on_problem,
) -> list[str]:
    """The optional outputs: people/ folders and the contact sheet; returns what was written."""
    written = [CSV, JSON]
    with open_store(store_path) as store:
        if folders == "links":
            write_links(output, Path(store.attrs.get("root", "")), store.paths(), labels)
        elif folders == "crops":
            for problem in write_crops(output, store, labels)[1]:
                if on_problem:
                    on_problem(problem)
        if folders != "none":
            written.append(PEOPLE + "/")
        if sheet:
            write_sheet(output / SHEET, store, labels, title, max_clusters=sheet_clusters, names=names)
            written.append(SHEET)
    return written
