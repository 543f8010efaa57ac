"""Shared fixtures: real faces from ../shared/data and the pretrained model, loaded once."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import fnet

SHARED_DATA = Path(os.environ.get("FNET_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
LFW = SHARED_DATA / "lfw" / "lfw-deepfunneled"
DEEPFACE = SHARED_DATA / "deepface-unit"


def iou(a, b) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def lfw_face(person: str, number: int, crop: int = 120) -> np.ndarray:
    """A real face crop: the centre of a deep-funneled (roughly aligned) 250 x 250 LFW photo."""
    path = LFW / person / f"{person}_{number:04d}.jpg"
    if not path.is_file():
        pytest.skip(f"LFW data not found at {LFW} (set FNET_SHARED_DATA)")
    image = fnet.load_image(path)
    top = (image.shape[0] - crop) // 2
    left = (image.shape[1] - crop) // 2
    return image[top : top + crop, left : left + crop]


# Ten people with many LFW photos; three photos each.
PEOPLE = [
    "George_W_Bush", "Colin_Powell", "Tony_Blair", "Donald_Rumsfeld", "Gerhard_Schroeder",
    "Ariel_Sharon", "Hugo_Chavez", "Junichiro_Koizumi", "Jean_Chretien", "John_Ashcroft",
]


@pytest.fixture(scope="session")
def model():
    return fnet.load_model(device="cpu")


@pytest.fixture(scope="session")
def people_crops() -> tuple[np.ndarray, np.ndarray]:
    """(crops N x 160 x 160 x 3 uint8, identity labels N) for 10 people x 3 photos."""
    from PIL import Image

    crops, labels = [], []
    for label, person in enumerate(PEOPLE):
        for number in (1, 2, 3):
            crop = lfw_face(person, number)
            crops.append(np.asarray(Image.fromarray(crop).resize((160, 160), Image.BILINEAR)))
            labels.append(label)
    return np.stack(crops), np.array(labels)


@pytest.fixture(scope="session")
def detector():
    from fnet.core.detector import FaceDetector

    return FaceDetector(device="cpu")


@pytest.fixture(scope="session")
def aligner(detector):
    from fnet.pipeline.aligner import Aligner, AlignSettings

    return Aligner(detector, AlignSettings(pick="all"))


@pytest.fixture(scope="session")
def deepface_identities() -> dict[str, str]:
    import csv

    with open(DEEPFACE / "identities.csv", newline="") as handle:
        return {row["image"]: row["identity"] for row in csv.DictReader(handle)}


@pytest.fixture(scope="session")
def deepface_embeddings(model, aligner, deepface_identities) -> tuple[list[str], np.ndarray]:
    """(file names, embeddings) of the 61 single-person deepface-unit photos, full pipeline."""
    from fnet.pipeline.verify import choose_face

    files = sorted(deepface_identities)
    crops = np.stack([choose_face(DEEPFACE / name, aligner).crop for name in files])
    return files, model.embed(crops)
