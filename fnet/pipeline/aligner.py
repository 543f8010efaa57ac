"""The aligner: decoded photos -> aligned crops of their faces (detect, pick, crop or warp)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from fnet.crops import align_face, pick_faces
from fnet.face import Face
from fnet.io.images import Reduced, decoded_pixels

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
    """Photos -> aligned crops of the faces chosen by ``settings.pick``.

    A photo may come Reduced (a large JPEG decoded at a fraction of its size, `decode_size`):
    its faces are found on that, and cut from it when each is at least a crop's size across
    there, else from the whole photo, decoded again; the faces returned are in the whole
    photo's pixels either way.
    """

    def __init__(self, detector: Detector, settings: AlignSettings = AlignSettings()):
        self.detector = detector
        self.settings = settings

    @property
    def decode_size(self) -> int | None:
        """How large photos need be decoded for detection (the detector's detect_size; None: whole)."""
        return getattr(self.detector, "detect_size", None)

    @property
    def on_cpu(self) -> bool:
        """Whether detection runs on the CPU (a detector without a `device` is taken to)."""
        device = getattr(self.detector, "device", None)
        return device is None or str(device).split(":")[0] == "cpu"  # a torch.device or its name

    def align(self, images: list[np.ndarray | Reduced]) -> list[list[AlignedFace]]:
        s = self.settings
        decoded = [decoded_pixels(image) for image in images]
        out = []
        for image, source, faces in zip(images, decoded, self.detector.detect(decoded)):
            chosen = pick_faces(faces, source.shape, s.pick)
            found = reported = [faces[i] for i in chosen]  # in the pixels cut from; in the photo's
            if isinstance(image, Reduced):
                reported = [face.rescaled(*image.scale, image.shape) for face in found]
                if any(max(face.width, face.height) < s.size for face in found):  # too few pixels here
                    source, found = image.whole(), reported
            out.append([AlignedFace(i, face, align_face(source, cut, s.mode, s.size, s.margin))
                        for i, cut, face in zip(chosen, found, reported)])
        return out
