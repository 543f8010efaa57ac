"""Large faces and landmark warps: does shrinking the photo first (a box filter) keep embeddings honest?

A 5-point warp (`similarity`, `chip`, `wide` modes) samples the photo bilinearly; a face of
1,000 px warped to a 150 px chip would skip most photo pixels (aliasing). fnet's `warp_face`
shrinks such a face by a whole factor first. On deepface-unit's 61 single-person photos
(faces of 200-1,000 px), for dlib-resnet's chips:

- stability: the distance between a photo's embedding and the embedding of the same photo
  shrunk to a quarter of its sides beforehand (Lanczos; its face then needs no shrinking), the
  landmarks scaled alike: 0 would be ideal;
- verification: accuracy at the best threshold over deepface-unit's 300 labelled pairs
  (master.csv).

Each with the plain bilinear warp and with the shrink-first warp.

    python bench/large_faces.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from dlib_alignment import bilinear_warp
from PIL import Image

import fnet
from fnet.core.detector import FaceDetector
from fnet.crops import FITTED_LANDMARKS, pick_faces, warp_face
from fnet.evaluation.metrics import best_threshold

DEEPFACE = Path(__file__).resolve().parents[2] / "shared/data/deepface-unit"


def plain_warp(image: np.ndarray, landmarks: np.ndarray, size: int, template: str) -> np.ndarray:
    """The warp without shrinking first (what fnet did before)."""
    return bilinear_warp(image, landmarks, template, size, FITTED_LANDMARKS.get(template, slice(None)))


def main() -> None:
    with open(DEEPFACE / "master.csv", newline="") as handle:
        pairs = [(row["file_x"], row["file_y"], row["Decision"] == "Yes") for row in csv.DictReader(handle)]
    with open(DEEPFACE / "identities.csv", newline="") as handle:
        names = sorted({row["image"] for row in csv.DictReader(handle)} | {n for a, b, _ in pairs for n in (a, b)})
    images = {n: fnet.load_image(DEEPFACE / n) for n in names}
    detector = FaceDetector(device="cpu")
    landmarks, sides = {}, []
    for name in names:
        faces = detector.detect([images[name]])[0]
        face = faces[pick_faces(faces, images[name].shape)[0]]
        landmarks[name] = face.landmarks
        sides.append(face.box[2] - face.box[0])
    model = fnet.load_model("dlib-resnet", device="cpu")
    print(f"deepface-unit: {len(names)} photos, face widths {min(sides):.0f}-{max(sides):.0f} px (median {np.median(sides):.0f}); "
          f"{len(pairs)} labelled pairs; dlib-resnet chips")
    print("| warp | mean distance to the pre-shrunk photo's embedding | max | verification accuracy (best threshold) |")
    print("| --- | --- | --- | --- |")
    for label, warp in (("plain bilinear", plain_warp), ("shrink first (fnet)", warp_face)):
        full = model.embed(np.stack([warp(images[n], landmarks[n], 150, "chip") for n in names]))
        small = []
        for n in names:
            h, w = images[n].shape[:2]
            shrunk = np.asarray(Image.fromarray(images[n]).resize((w // 4, h // 4), Image.LANCZOS))
            small.append(plain_warp(shrunk, landmarks[n] * [(w // 4) / w, (h // 4) / h], 150, "chip"))
        reference = model.embed(np.stack(small))
        stability = ((full - reference) ** 2).sum(1)
        row = {n: i for i, n in enumerate(names)}
        d = np.array([((full[row[a]] - full[row[b]]) ** 2).sum() for a, b, _ in pairs])
        same = np.array([s for _, _, s in pairs])
        accuracy = np.mean((d <= best_threshold(d, same)) == same)
        print(f"| {label} | {stability.mean():.4f} | {stability.max():.4f} | {accuracy:.1%} |")


if __name__ == "__main__":
    main()
