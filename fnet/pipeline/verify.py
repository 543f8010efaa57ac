"""The verify stage: two photos (or aligned crops) -> same person or not, with the distance.

``verify_photos(pipeline, a, b)`` is the whole of it (``fnet.verify`` and ``fnet verify``):
both photos are decoded first, so a bad file fails before any weights load, and the weights
load in the background while the faces are found.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from fnet.crops import align_face, pick_faces
from fnet.errors import FnetError, SettingsError
from fnet.face import Face
from fnet.io.images import load_image

if TYPE_CHECKING:  # torch loads with the model, not with this module
    from fnet.core.embedder import Embedder
    from fnet.pipeline.aligner import Aligner
    from fnet.pipeline.build import Pipeline

Photo = str | Path | np.ndarray  # a file, or an H x W x 3 uint8 RGB array


class VerifyError(FnetError, ValueError):
    """A photo that cannot be verified (no face, no such face number, not a crop). ``str()``: 'path: reason'."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclasses.dataclass
class ChosenFace:
    path: str
    faces_found: int  # 0 for an aligned crop given as such
    number: int  # faces are numbered left to right, from 0
    face: Face | None
    crop: np.ndarray

    def describe(self) -> str:
        if self.face is None:
            return f"{self.path}: aligned crop"
        box = ", ".join(f"{v:.0f}" for v in self.face.box)
        many = f"face {self.number} of {self.faces_found} from the left (--face-a/--face-b pick another), " if self.faces_found > 1 else ""
        return f"{self.path}: {many}box ({box}), detector confidence {self.face.score:.3f}"


@dataclasses.dataclass
class Verdict:
    distance: float  # squared L2 between unit embeddings, 0..4
    threshold: float
    a: ChosenFace
    b: ChosenFace

    @property
    def same(self) -> bool:
        return self.distance <= self.threshold

    def to_dict(self) -> dict:
        def side(c: ChosenFace) -> dict:
            return {"path": c.path, "faces_found": c.faces_found, "face": c.number, **(c.face.to_dict() if c.face else {})}

        return {"same_person": self.same, "distance": round(self.distance, 5), "threshold": self.threshold, "a": side(self.a), "b": side(self.b)}


def choose_face(
    path: str | Path, aligner: Aligner, number: int | None = None, aligned: bool = False, image: np.ndarray | None = None
) -> ChosenFace:
    """Detect the faces of one photo and pick one: `number` (left to right), else the most central large face.

    image: the photo already decoded (else it is read from path).
    """
    image = load_image(path) if image is None else image  # ImageError names the file
    size = aligner.settings.size
    if aligned:
        return ChosenFace(str(path), 0, 0, None, aligned_crop(path, image, size))
    faces = aligner.detector.detect([image])[0]  # left to right
    if not faces:
        raise VerifyError(path, "no face found (if it is an aligned crop already, pass --aligned)")
    if number is None:
        number = pick_faces(faces, image.shape, "center")[0]
    elif not 0 <= number < len(faces):
        raise VerifyError(path, f"has {len(faces)} face(s), numbered 0 to {len(faces) - 1} from the left; no face {number}")
    s = aligner.settings
    return ChosenFace(str(path), len(faces), number, faces[number], align_face(image, faces[number], s.mode, s.size, s.margin))


def aligned_crop(path: str | Path, image: np.ndarray, size: int) -> np.ndarray:
    """An image given as an aligned face crop, at the model's size; a whole photo is refused.

    A crop is square, or nearly (aligners differ), and near the model's input size: a photo
    passed as one would be squashed, and two squashed photos can look alike to the model.
    """
    height, width = image.shape[:2]
    if abs(height - width) > 0.1 * max(height, width) or max(height, width) > 2 * size:
        raise VerifyError(
            path, f"{width} x {height} pixels is not an aligned face crop (about {size} x {size}); drop --aligned to detect the face in it"
        )
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def verify(
    a: ChosenFace, b: ChosenFace, model: Embedder, threshold: float | None = None, flip: bool = False
) -> Verdict:
    emb = model.embed(np.stack([a.crop, b.crop]), flip=flip)
    distance = float(((emb[0] - emb[1]) ** 2).sum())
    return Verdict(distance, model.info.threshold if threshold is None else threshold, a, b)


def verify_photos(
    pipeline: Pipeline,
    a: Photo,
    b: Photo,
    face_a: int | None = None,
    face_b: int | None = None,
    aligned: bool = False,
    threshold: float | None = None,
    flip: bool = False,
) -> Verdict:
    """Are the people in photos a and b the same? face_a / face_b pick a face (left to right from 0).

    aligned: a and b are aligned crops already (no detection). threshold: squared L2 at or
    under which it is the same person (default: the model's).
    """
    if threshold is not None and not 0 <= threshold <= 4:
        raise SettingsError(f"--threshold {threshold:g}: a squared L2 distance between unit vectors, from 0 to 4")
    names = [photo_name(photo, side) for photo, side in ((a, "a"), (b, "b"))]
    images = [photo if isinstance(photo, np.ndarray) else load_image(photo) for photo in (a, b)]
    pipeline.preload()  # the weights load while the faces are found (a cold start's biggest cost)
    aligner = pipeline.aligner("all")
    chosen = [choose_face(name, aligner, number, aligned, image) for name, number, image in zip(names, (face_a, face_b), images)]
    return verify(*chosen, pipeline.embedder, threshold, flip)


def photo_name(photo: Photo, fallback: str) -> str:
    """How errors and results name a photo: its path, or 'array <fallback>' for an array."""
    if isinstance(photo, np.ndarray):
        if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
            raise SettingsError(f"photo {fallback}: an array must be H x W x 3 uint8 RGB, not {photo.shape} {photo.dtype}")
        return f"array {fallback}"
    return str(photo)
