"""The verify stage: two photos (or aligned crops) -> same person or not, with the distance."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from fnet.align import Aligner
from fnet.alignment import align_face, pick_faces
from fnet.core.detector import Face
from fnet.core.embedder import Embedder
from fnet.io.images import load_image


class VerifyError(ValueError):
    """A photo that cannot be verified (unreadable, no face, no such face number), naming it."""


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


def choose_face(path: str | Path, aligner: Aligner, number: int | None = None, aligned: bool = False) -> ChosenFace:
    """Detect the faces of one photo and pick one: `number` (left to right), else the most central large face."""
    image = load_image(path)  # ImageError names the file
    size = aligner.settings.size
    if aligned:
        return ChosenFace(str(path), 0, 0, None, np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR)))
    faces = aligner.detector.detect([image])[0]
    if not faces:
        raise VerifyError(f"{path}: no face found (if it is an aligned crop already, pass --aligned)")
    left_to_right = sorted(range(len(faces)), key=lambda i: faces[i].box[0])
    if number is None:
        index = pick_faces(faces, image.shape, "center")[0]
        number = left_to_right.index(index)
    elif not 0 <= number < len(faces):
        raise VerifyError(f"{path}: has {len(faces)} face(s), numbered 0 to {len(faces) - 1} from the left; no face {number}")
    face = faces[left_to_right[number]]
    s = aligner.settings
    return ChosenFace(str(path), len(faces), number, face, align_face(image, face, s.mode, s.size, s.margin))


def verify(
    a: ChosenFace, b: ChosenFace, model: Embedder, threshold: float | None = None, flip: bool = False
) -> Verdict:
    emb = model.embed(np.stack([a.crop, b.crop]), flip=flip)
    distance = float(((emb[0] - emb[1]) ** 2).sum())
    return Verdict(distance, model.info.threshold if threshold is None else threshold, a, b)
