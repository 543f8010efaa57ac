"""Faces of single photos for the Python API: ``fnet.faces`` (every face) and ``fnet.embed`` (one per photo)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from fnet.face import Face
from fnet.io.images import load_image
from fnet.pipeline.verify import Photo, VerifyError, aligned_crop, photo_name

if TYPE_CHECKING:
    from fnet.pipeline.build import Pipeline


@dataclasses.dataclass
class FoundFace:
    number: int  # left to right, from 0
    face: Face  # box (x1, y1, x2, y2), score, landmarks, in the photo's pixels
    crop: np.ndarray  # the aligned crop the model saw
    embedding: np.ndarray | None  # unit length; None when not asked for

    @property
    def box(self) -> tuple[float, float, float, float]:
        return self.face.box

    @property
    def score(self) -> float:
        return self.face.score

    @property
    def landmarks(self) -> np.ndarray:
        return self.face.landmarks

    def to_dict(self, embedding: bool = False) -> dict:
        out = {"face": self.number, **self.face.to_dict()}
        if embedding and self.embedding is not None:
            out["embedding"] = [round(float(v), 6) for v in self.embedding]
        return out


def find_faces(pipeline: Pipeline, photo: Photo, embed: bool = True) -> list[FoundFace]:
    """Every face found in the photo, left to right; each embedded unless embed=False (no model loads then)."""
    photo_name(photo, "photo")  # an array of the wrong shape fails here, before detection
    image = photo if isinstance(photo, np.ndarray) else load_image(photo)
    if embed:
        pipeline.preload()
    return faces_in(pipeline, [image], embed)[0]


def faces_in(pipeline: Pipeline, images: list[np.ndarray], embed: bool = True) -> list[list[FoundFace]]:
    """Every face of each decoded photo, left to right: one detector pass over the photos, then one
    embedding pass over all their faces (the batch the CLI, the Python API and the server all make)."""
    aligned = pipeline.aligner("all").align(images) if images else []
    crops = [a.crop for faces in aligned for a in faces]
    rows = iter(pipeline.embedder.embed(np.stack(crops)) if embed and crops else [])
    return [[FoundFace(a.index, a.face, a.crop, next(rows, None)) for a in faces] for faces in aligned]


def embed_photos(pipeline: Pipeline, photos: list[Photo], aligned: bool = False, detect_batch: int = 8) -> np.ndarray:
    """One unit embedding per photo (N x D float32): its face chosen by the pipeline's pick, or the photo
    itself with aligned=True (crops from `fnet align`). A photo without a face raises an error naming it."""
    names = [photo_name(photo, str(number)) for number, photo in enumerate(photos)]
    images = [photo if isinstance(photo, np.ndarray) else load_image(photo) for photo in photos]
    pipeline.preload()
    if aligned:
        crops = [aligned_crop(name, image, pipeline.crop_size) for name, image in zip(names, images)]
    else:
        aligner, crops = pipeline.aligner(), []
        for start in range(0, len(images), detect_batch):
            for name, faces in zip(names[start:], aligner.align(images[start : start + detect_batch])):
                if not faces:
                    raise VerifyError(name, "no face found (if it is an aligned crop already, pass aligned=True)")
                crops.append(faces[0].crop)
    if not crops:
        return np.zeros((0, pipeline.info.embedding_dim), np.float32)
    return pipeline.embedder.embed(np.stack(crops))
