"""What a clustering run leaves in its output folder, and reading it back for the next run.

    clusters.csv   one row per face: cluster, person, name, store row, path, box (x1, y1, x2, y2)
    clusters.json  the settings, the store it came from, counts, each cluster's rows, and the names given
    people/        optional: per cluster, links to its photos or its face crops
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from fnet import __version__
from fnet.clustering.methods import cluster_members
from fnet.errors import FnetError
from fnet.io.atomic import atomic_path
from fnet.io.store import Store

CSV, JSON, PEOPLE = "clusters.csv", "clusters.json", "people"
FOLDER_MODES = ("none", "links", "crops")


class OutputError(FnetError, ValueError):
    """An output folder that does not belong to the store being clustered."""


def summary(labels: np.ndarray) -> dict:
    sizes = np.bincount(labels) if len(labels) else np.zeros(0, np.int64)
    return {
        "faces": len(labels),
        "clusters": len(sizes),
        "singletons": int((sizes == 1).sum()),
        "largest": int(sizes.max()) if len(sizes) else 0,
    }


def paths_digest(paths: list[str]) -> str:
    return hashlib.sha256("\n".join(paths).encode("utf-8", "surrogateescape")).hexdigest()


def write_assignments(out: Path, store: Store, labels: np.ndarray, settings: dict, names: dict[int, str] | None = None) -> dict:
    """clusters.csv, then clusters.json, each written whole.

    clusters.json is the record the next run reads (labels and a digest of the faces' paths);
    a run killed between the two files leaves it as it was, so the next run starts from the
    last complete run and rewrites both.
    """
    out.mkdir(parents=True, exist_ok=True)
    paths, boxes, names = store.paths(), store.boxes(), names or {}
    _write_csv(out, labels, paths, boxes.tolist(), names)
    meta = {
        **summary(labels),
        "settings": settings,
        "store": str(store.path.resolve()),
        "model": store.attrs["model"],
        "root": store.attrs.get("root", ""),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "fnet_version": __version__,
        "members": [m.tolist() for m in cluster_members(labels)],
        "paths_sha256": paths_digest(paths),  # which faces these are, without reading clusters.csv back
        "names": {str(cluster): name for cluster, name in sorted(names.items())},
    }
    with atomic_path(out / JSON) as tmp:
        tmp.write_text(json.dumps(meta))
    return meta


def _write_csv(out: Path, labels: np.ndarray, paths: list[str], boxes: list, names: dict[int, str]) -> None:
    with atomic_path(out / CSV) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["cluster", "person", "name", "row", "path", "x1", "y1", "x2", "y2"])
        for row, (cluster, path, box) in enumerate(zip(labels.tolist(), paths, boxes)):
            cells = ("" if np.isnan(v) else round(v, 1) for v in box)
            writer.writerow([cluster, person_name(cluster), names.get(cluster, ""), row, path, *cells])


def cluster_names(meta: dict) -> dict[int, str]:
    """The names given to clusters (cluster number -> name) in a clusters.json record."""
    return {int(cluster): name for cluster, name in meta.get("names", {}).items()}


def name_clusters(out: Path, store: Store, names: dict[int, str]) -> dict:
    """Give clusters names (added to those given before); rewrites clusters.csv, then clusters.json."""
    found = read_assignments(out, store)
    if found is None:
        raise OutputError(f"{out}: no clusters here; `fnet cluster` makes them")
    labels, meta = found
    unknown = sorted(c for c in names if not 0 <= c < meta["clusters"])
    if unknown:
        raise OutputError(f"{out}: no {person_name(unknown[0])} (the clusters run from person-0001 to {person_name(meta['clusters'] - 1)})")
    given = {**cluster_names(meta), **names}
    _write_csv(out, labels, store.paths(0, len(labels)), store.boxes()[: len(labels)].tolist(), given)
    meta["names"] = {str(cluster): name for cluster, name in sorted(given.items())}
    with atomic_path(out / JSON) as tmp:
        tmp.write_text(json.dumps(meta))
    return meta


def read_assignments(out: Path, store: Store) -> tuple[np.ndarray, dict] | None:
    """(labels of the store's first rows, the previous run's metadata), or None if out holds no run."""
    if not (out / JSON).is_file():
        return None
    meta = json.loads((out / JSON).read_text())
    labels = np.full(meta["faces"], -1, np.int64)
    for cluster, rows in enumerate(meta["members"]):
        labels[rows] = cluster
    if meta["model"] != store.attrs["model"] or meta["faces"] > len(store):
        raise OutputError(f"{out}: clustered {meta['faces']} faces of {meta['model']!r}, not from {store.path}; use --recluster")
    old_paths = store.paths(0, meta["faces"])
    if "paths_sha256" in meta:
        same = meta["paths_sha256"] == paths_digest(old_paths)
    else:  # written by fnet 0.1.0: its clusters.csv was written in the same run
        with open(out / CSV, newline="", encoding="utf-8") as handle:
            same = [row["path"] for row in csv.DictReader(handle)] == old_paths
    if not same:
        raise OutputError(f"{out}: its faces are not the first rows of {store.path}; use --recluster")
    return labels, meta


def link_name(path: str) -> str:
    """A flat, unique file name for a store path: 'trip/day1/IMG_1.jpg' -> 'trip__day1__IMG_1.jpg'."""
    return path.replace("/", "__")


def person_name(cluster: int) -> str:
    """How a cluster is named everywhere (CSV, report, people/ folders): cluster 0 is person-0001."""
    return f"person-{cluster + 1:04d}"


def cluster_folder(out: Path, cluster: int) -> Path:
    return out / PEOPLE / person_name(cluster)


def write_links(out: Path, root: Path, paths: list[str], labels: np.ndarray) -> int:
    """people/person-NNNN/ with a symbolic link to each photo holding one of the cluster's faces."""
    made, root, keep = 0, Path(root).resolve(), set()
    for path, cluster in zip(paths, labels.tolist()):
        link = cluster_folder(out, cluster) / link_name(path)
        keep.add(link)
        if link.is_symlink():
            continue
        if not (root / path).resolve().is_relative_to(root):  # an absolute or ../ path: a hostile store
            raise OutputError(f"{path}: outside the store's root {root}; no link is made to it")
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath((root / path).resolve(), link.parent), link)
        made += 1
    remove_stale(out, keep)
    return made


def remove_stale(out: Path, keep: set[Path]) -> int:
    """Remove what people/ holds beyond `keep` (a face that moved to another person after --recluster or
    a merge, crops left by a --folders crops run); the folders are fnet's output, rewritten with each run."""
    removed = 0
    for folder in sorted((out / PEOPLE).glob("person-*")):
        for entry in folder.iterdir():
            if entry not in keep and (entry.is_symlink() or entry.is_file()):
                entry.unlink()
                removed += 1
        if not any(folder.iterdir()):
            folder.rmdir()
    return removed


def write_crops(out: Path, store: Store, labels: np.ndarray, size: int = 160) -> tuple[int, list[str]]:
    """people/person-NNNN/ with each of the cluster's faces as a JPEG; (written, unreadable photos)."""
    from PIL import Image

    from fnet.clustering.sheet import face_pictures

    paths, made, unreadable = store.paths(), 0, []
    targets = [cluster_folder(out, int(labels[row])) / f"{Path(link_name(paths[row])).stem}-{row}.jpg" for row in range(len(labels))]
    for row, picture in face_pictures(store, list(range(len(labels))), size):
        if not isinstance(picture, np.ndarray):
            unreadable.append(f"{paths[row]}: {picture.reason}")
            continue
        target = targets[row]
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                Image.fromarray(picture).save(tmp, "JPEG", quality=90)
            made += 1
    remove_stale(out, set(targets))
    return made, unreadable
