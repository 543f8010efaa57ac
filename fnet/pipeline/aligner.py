"""The aligner: decoded photos -> aligned crops of their faces (detect, pick, crop or warp)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from fnet.crops import align_face, pick_faces
from fnet.face import Face

if TYPE_CHECKING:  # any detector of the registry will do
    from fnet.core.detectors import Detector


@dataclasses.dataclass(frozen=True)
class AlignSettings:
    size: int = 160
    margin: float = 32
    mode: str = "crop"  # or "similarity"
    pick: str = "center"  # or "largest", "all"


@dataclasses.dataclass
class AlignedFace:
    index: int  # the face's number in its photo, left to right from 0
    face: Face
    crop: np.ndarray


class Aligner:
    """Photos -> aligned crops of the faces chosen by ``settings.pick``."""

    def __init__(self, detector: Detector, settings: AlignSettings = AlignSettings()):
        self.detector = detector
        self.settings = settings

    def align(self, images: list[np.ndarray]) -> list[list[AlignedFace]]:
        s = self.settings
        out = []
        for image, faces in zip(images, self.detector.detect(images)):
            chosen = pick_faces(faces, image.shape, s.pick)
            out.append([AlignedFace(i, faces[i], align_face(image, faces[i], s.mode, s.size, s.margin)) for i in chosen])
        return out
