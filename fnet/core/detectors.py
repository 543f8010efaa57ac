"""The detector seam: a registry of face detectors, all answering ``detect(images) -> faces per image``.

A new detector is a class with that one method (faces as ``fnet.face.Face``, numbered left
to right) and a factory registered here; ``--detector NAME``, ``load_pipeline(detector=NAME)``
and every stage then take it. Listing the names imports no network (no torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from fnet.face import DETECT_SIZE, Face
from fnet.registry import Registry


class Detector(Protocol):
    """Optionally also `detect_size`: the longest side it searches photos at (None: as they are);
    stages then decode large JPEGs at a reduced size (fnet.io.images.Reduced)."""

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Per RGB uint8 image, its faces sorted left to right (by box centre)."""
        ...


DETECTORS = Registry("detector")


@DETECTORS.register("mtcnn", "the MTCNN cascade, batched over photos, on any device")
def build_mtcnn(device: str = "auto", min_face: int = 20, detect_size: int | None = DETECT_SIZE) -> Detector:
    from fnet.core.detector import DetectorSettings, FaceDetector

    return FaceDetector(device, DetectorSettings(min_face_size=min_face, max_side=detect_size or None))
