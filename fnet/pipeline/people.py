"""The people stages: enrol faces into the gallery (from a folder tree, single photos or named clusters)
and recognise every face of every photo against it, open-set (fnet.people.identify).

Embeddings are computed before the gallery is touched; each enrolment is then one
transaction, so a killed run leaves the gallery as before or as after. Photos already
enrolled under the same person are skipped, so an interrupted enrolment is simply rerun.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fnet.clustering.output import JSON, cluster_names, name_clusters, person_name
from fnet.clustering.sheet import face_pictures
from fnet.errors import SettingsError
from fnet.face import Face
from fnet.io.ahead import photo_batches
from fnet.io.images import ImageError
from fnet.io.stores import open_store
from fnet.io.thumbnails import thumbnail_jpeg
from fnet.io.tree import find_images, label_of
from fnet.people.gallery import Gallery, NewFace, sql_number
from fnet.people.identify import Identifier, Identity, ThresholdChoice
from fnet.pipeline.faces import FoundFace, faces_in

if TYPE_CHECKING:
    from fnet.pipeline.build import Pipeline


@dataclasses.dataclass(frozen=True)
class Quality:
    """The floor a face must pass to be enrolled: background faces must not become people."""

    min_size: float = 40  # box width in the photo, pixels
    min_score: float = 0.85  # detector confidence (MTCNN keeps faces from 0.8; real faces in deepface-unit scored 0.90-1.0)

    def problem(self, face: Face) -> str | None:
        if face.width < self.min_size:
            return f"face too small to enrol ({face.width:.0f} px wide, --min-size {self.min_size:g})"
        if face.score < self.min_score:
            return f"face too uncertain to enrol (detector confidence {face.score:.2f}, --min-score {self.min_score:g})"
        return None


@dataclasses.dataclass
class EnrolReport:
    people: dict[str, int] = dataclasses.field(default_factory=dict)  # name -> faces enrolled now
    skipped: int = 0  # photos enrolled already
    below_quality: int = 0
    no_face: int = 0
    errors: int = 0

    @property
    def faces(self) -> int:
        return sum(self.people.values())

    @property
    def failed(self) -> bool:
        return bool(self.no_face or self.errors)


OnPhoto = Callable[[Path, "str | None"], None]  # a photo is done: None, or why it gave no face


def enrol_photos(
    pipeline: Pipeline, gallery_path: Path, photos: Iterable[tuple[str, Path]], quality: Quality = Quality(),
    source: str = "photo", on_start: Callable[[int], None] | None = None, on_photo: OnPhoto | None = None,
) -> EnrolReport:
    """Enrol (name, photo) pairs: each photo's most central large face, if it passes the quality floor."""
    report, pairs = EnrolReport(), list(photos)
    with Gallery.open(gallery_path, pipeline.info.name, pipeline.info.embedding_dim, create=True) as gallery:
        done = {(f["person"], f["photo"]) for f in gallery.faces()}
    todo = [(name, path) for name, path in pairs if (name, str(path)) not in done]
    report.skipped = len(pairs) - len(todo)
    if on_start:
        on_start(len(todo))
    found: dict[str, list[NewFace]] = {}
    aligner = pipeline.aligner("center")
    for batch in photo_batches(todo, 8, path_of=lambda pair: pair[1]):
        images = [image for _, image in batch if not isinstance(image, ImageError)]
        aligned = iter(aligner.align(images)) if images else iter(())
        crops = []
        for (name, path), image in batch:
            reason = image.reason if isinstance(image, ImageError) else None
            faces = [] if reason else next(aligned)
            if not reason and not faces:
                reason, report.no_face = "no face found", report.no_face + 1
            elif reason:
                report.errors += 1
            elif problem := quality.problem(faces[0].face):
                reason, report.below_quality = problem, report.below_quality + 1
            else:
                crops.append((name, path, faces[0]))
            if on_photo:
                on_photo(path, reason)
        if crops:
            embeddings = pipeline.embedder.embed(np.stack([f.crop for _, _, f in crops]))
            for (name, path, f), embedding in zip(crops, embeddings):
                found.setdefault(name, []).append(NewFace(embedding, str(path), f.index, f.face.box, f.face.score, source, thumbnail_jpeg(f.crop)))
    with Gallery.open(gallery_path, pipeline.info.name) as gallery, gallery.writing():
        for name, faces in found.items():
            gallery.add_faces(name, faces)
            report.people[name] = len(faces)
    return report


def tree_photos(folder: Path) -> list[tuple[str, Path]]:
    """(person, photo) for every photo of FOLDER/person/...: the top folder names the person."""
    pairs = [(label_of(path.relative_to(folder).as_posix()), path) for path in find_images(folder)]
    if not any(name for name, _ in pairs):
        raise SettingsError(f"{folder}: no photos in person folders (expected {folder}/NAME/photo.jpg)")
    return [(name, path) for name, path in pairs if name]


def enrol_clusters(
    gallery_path: Path, clusters: Path, names: dict[int, str], every: bool = False, quality: Quality = Quality(),
) -> EnrolReport:
    """Name clusters of a `fnet cluster` folder (the names are kept there for later runs) and enrol their faces.

    names: cluster number (0 is person-0001) -> name. every: also enrol every other cluster of
    two or more faces, under its person-NNNN name. Faces come from the cluster run's store, so
    nothing is detected or embedded again; the quality floor applies to their size.
    """
    meta_path = Path(clusters) / JSON
    if not meta_path.is_file():
        raise SettingsError(f"{clusters}: no clusters here (`fnet cluster PHOTOS -o {clusters}` makes them)")
    report = EnrolReport()
    with open_store(json.loads(meta_path.read_text())["store"]) as store:
        meta = name_clusters(Path(clusters), store, names)
        given = cluster_names(meta)
        chosen = {c: given.get(c, person_name(c)) for c, rows in enumerate(meta["members"]) if len(rows) > 1} if every else given
        root, paths, boxes = Path(store.attrs.get("root", "")), store.paths(), store.boxes()
        found: dict[str, list[NewFace]] = {}
        wanted = sorted(row for cluster in chosen for row in meta["members"][cluster])
        pictures = {row: thumbnail_jpeg(p) for row, p in face_pictures(store, wanted, 96) if not isinstance(p, ImageError)}
        for cluster, name in chosen.items():
            rows = np.array(meta["members"][cluster], np.int64)
            for row, embedding in zip(rows, store.take(rows)):
                box = tuple(float(v) for v in boxes[row])
                if not np.isnan(box[0]) and box[2] - box[0] < quality.min_size:
                    report.below_quality += 1
                    continue
                found.setdefault(name, []).append(
                    NewFace(embedding.astype(np.float32), str(root / paths[row]), 0, box, float("nan"), "cluster", pictures.get(int(row)))
                )
        model, dim = store.attrs["model"], store.dim
    with Gallery.open(gallery_path, model, dim, create=True) as gallery, gallery.writing():
        done = {(f["person"], f["photo"], f["x1"]) for f in gallery.faces()}
        for name, faces in found.items():
            new = [f for f in faces if (name, f.photo, sql_number(f.box[0])) not in done]
            report.skipped += len(faces) - len(new)
            if new:
                gallery.add_faces(name, new)
                report.people[name] = len(new)
    return report



@dataclasses.dataclass
class RecognisedFace:
    number: int  # left to right, from 0
    face: Face
    identity: Identity

    def to_dict(self) -> dict:
        return {"face": self.number, **self.face.to_dict(), **self.identity.to_dict()}


@dataclasses.dataclass
class RecognisedPhoto:
    path: Path
    faces: list[RecognisedFace]
    image: np.ndarray | None = None  # kept only when drawing

    def to_dict(self) -> dict:
        return {"photo": str(self.path), "faces": [f.to_dict() for f in self.faces]}


def open_identifier(gallery_path: Path, pipeline: Pipeline, threshold: float | None, fpir: float) -> tuple[Identifier, ThresholdChoice]:
    """The gallery's faces ready to search, and the threshold to name them by (given, or chosen for fpir)."""
    with Gallery.open(gallery_path, pipeline.info.name) as gallery:
        identifier = Identifier(*gallery.embeddings())
    if not len(identifier.names):
        raise SettingsError(f"{gallery_path}: nobody is enrolled yet (`fnet people enrol` or `fnet people add`)")
    if threshold is not None:
        if not 0 <= threshold <= 4:
            raise SettingsError(f"--threshold {threshold:g}: a squared L2 distance between unit vectors, from 0 to 4")
        return identifier, ThresholdChoice(threshold, f"{threshold:.3f}: given (--threshold)", None)
    if not 0 < fpir < 1:
        raise SettingsError(f"--fpir {fpir:g}: a share of strangers, between 0 and 1 (e.g. 0.01)")
    return identifier, identifier.threshold(pipeline.info.name, pipeline.info.threshold, fpir)


def recognise_photos(
    pipeline: Pipeline, photos: list[Path], identifier: Identifier, threshold: float, keep_images: bool = False,
    on_start: Callable[[int], None] | None = None, on_photo: OnPhoto | None = None,
) -> Iterable[RecognisedPhoto]:
    """Every face of every photo, named or unknown; photos stream in bounded batches."""
    if on_start:
        on_start(len(photos))
    for batch in photo_batches(photos, 8):
        readable = [(path, image) for path, image in batch if not isinstance(image, ImageError)]
        named = identified(faces_in(pipeline, [image for _, image in readable]), identifier, threshold)
        found = {path: faces for (path, _), faces in zip(readable, named)}
        images = dict(readable)
        for path, image in batch:
            if isinstance(image, ImageError):
                if on_photo:
                    on_photo(path, image.reason)
                continue
            faces = found[path]
            if on_photo:
                on_photo(path, None if faces else "no face found")
            yield RecognisedPhoto(path, faces, images[path] if keep_images else None)


def identified(found: list[list[FoundFace]], identifier: Identifier, threshold: float) -> list[list[RecognisedFace]]:
    """Each photo's faces (from faces_in) with their names: one search for all of them."""
    embeddings = [f.embedding for faces in found for f in faces]
    identities = iter(identifier.identify(np.stack(embeddings), threshold) if embeddings else [])
    return [[RecognisedFace(f.number, f.face, next(identities)) for f in faces] for faces in found]


def photo_list(source: Path) -> list[Path]:
    """A photo, or every photo under a folder."""
    if source.is_dir():
        return find_images(source)
    if not source.exists():
        raise SettingsError(f"{source}: no such file or folder")
    return [source]

