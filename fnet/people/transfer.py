"""A gallery as files to hand on: people.json (people and faces, no vectors) and faces.h5 (the embeddings,
in the store format every fnet command reads), never pickle. Import adds what the target lacks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from fnet import __version__
from fnet.io.store import Rows
from fnet.io.stores import open_store, store_format, store_path
from fnet.people.gallery import Gallery, GalleryError, NewFace

MANIFEST = "people.json"


def export_gallery(gallery: Gallery, folder: str | os.PathLike) -> dict:
    """Write folder/people.json and folder/faces.h5; returns the manifest written."""
    folder = Path(folder)
    faces = gallery.faces()
    embeddings, _, _ = gallery.embeddings()  # both in face order
    boxes = np.array([[np.nan if f[k] is None else f[k] for k in ("x1", "y1", "x2", "y2")] for f in faces], np.float32).reshape(-1, 4)
    target = store_path(folder, "faces")
    attrs = {"model": gallery.model, "embedding_dim": gallery.embedding_dim, "normalization": "", "threshold": float("nan"), "fnet_version": __version__}
    store_format(target).write(target, [Rows(embeddings, [f["photo"] for f in faces], [f["person"] for f in faces], boxes)], attrs)
    manifest = {
        "fnet_version": __version__, "model": gallery.model, "embedding_dim": gallery.embedding_dim, "store": target.name,
        "people": [p.name for p in gallery.people()],
        "faces": [{k: f[k] for k in ("person", "photo", "face", "score", "source", "added")} for f in faces],  # in store order
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def read_manifest(folder: str | os.PathLike) -> dict:
    """An exported gallery's people.json (its model and dimension say which gallery may take it)."""
    try:
        return json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError) as err:
        raise GalleryError(folder, f"not an exported gallery ({MANIFEST}: {err})") from None


def import_gallery(gallery: Gallery, folder: str | os.PathLike) -> dict[str, int]:
    """Add an exported gallery's faces (call inside gallery.writing()); faces already there are skipped."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest["model"] != gallery.model:
        raise GalleryError(folder, f"holds {manifest['model']!r} faces; the gallery holds {gallery.model!r} ones")
    with open_store(folder / manifest["store"]) as store:
        embeddings, boxes = store.embeddings(), store.boxes()
    if len(embeddings) != len(manifest["faces"]):
        raise GalleryError(folder, f"{manifest['store']} holds {len(embeddings)} faces, {MANIFEST} {len(manifest['faces'])}")
    have = {(f["person"], f["photo"], f["face"]) for f in gallery.faces()}
    added: dict[str, list[NewFace]] = {}
    for face, embedding, box in zip(manifest["faces"], embeddings, boxes):
        if (face["person"], face["photo"], face["face"]) not in have:
            score = float("nan") if face["score"] is None else face["score"]
            added.setdefault(face["person"], []).append(
                NewFace(embedding.astype(np.float32), face["photo"], face["face"], tuple(map(float, box)), score, face["source"])
            )
    for name, faces in added.items():
        gallery.add_faces(name, faces)
    return {name: len(faces) for name, faces in added.items()}
