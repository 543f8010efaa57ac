"""Which landmarks make dlib-resnet's face chips: MTCNN's five points, or dlib's own shape predictor?

LFW View 2 (6,000 pairs, 10 folds). Every image is detected once with fnet's MTCNN (the
centre face, cached under bench/out/lfw/dlib-alignment/); then each variant cuts 150 x 150
chips and fnet's port of dlib's ResNet embeds them:

- MTCNN's points fitted to dlib's mean face: all five, or a subset (fnet's `chip` mode is
  eyes-mouth, chosen by this table);
- dlib's own pipeline (dlib-bin, dev extra): its 5-point shape predictor
  (shape_predictor_5_face_landmarks.dat, shipped beside the network) run in MTCNN's box, then
  dlib.get_face_chip (padding 0.25) -- what face_recognition does after its own detector.

    python bench/dlib_alignment.py [--variants five,eyes-nose,eyes-mouth,dlib-sp5] [--flip]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

import fnet
from fnet.core.detector import FaceDetector
from fnet.core.pretrained import REGISTRY
from fnet.crops import DLIB_PADDING, TEMPLATES, pick_faces, similarity_transform
from fnet.evaluation.metrics import kfold_accuracy, kfold_val_at_far
from fnet.io.images import load_image
from fnet.io.pairs import read_lfw_pairs

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared/data/lfw"
SHAPE_PREDICTOR = "face_recognition_models/models/shape_predictor_5_face_landmarks.dat"
SUBSETS = {"five": [0, 1, 2, 3, 4], "eyes-nose": [0, 1, 2], "eyes-mouth": [0, 1, 3, 4], "eyes": [0, 1]}


def detections(paths: list[Path], cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """(boxes N x 4, landmarks N x 5 x 2) of each image's centre face (NaN where none)."""
    if cache.is_file():
        saved = np.load(cache)
        return saved["boxes"], saved["landmarks"]
    detector = FaceDetector(device="cpu")
    boxes, landmarks = np.full((len(paths), 4), np.nan), np.full((len(paths), 5, 2), np.nan)
    for start in range(0, len(paths), 16):
        images = [load_image(p) for p in paths[start : start + 16]]
        for offset, (image, faces) in enumerate(zip(images, detector.detect(images))):
            if faces:
                face = faces[pick_faces(faces, image.shape)[0]]
                boxes[start + offset], landmarks[start + offset] = face.box, face.landmarks
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, boxes=boxes, landmarks=landmarks)
    return boxes, landmarks


def bilinear_warp(image: np.ndarray, points: np.ndarray, template: str, size: int, subset) -> np.ndarray:
    """`points[subset]` fitted onto fnet.crops' `template` at `size`, sampled bilinearly and nothing else
    (no shrinking first, unlike fnet's warp_face: bench/large_faces.py compares the two)."""
    forward = np.vstack([similarity_transform(points[subset], TEMPLATES[template][subset] * size), [0, 0, 1]])
    inverse = np.linalg.inv(forward)[:2].ravel()
    return np.asarray(Image.fromarray(image).transform((size, size), Image.AFFINE, tuple(inverse), resample=Image.BILINEAR))


def make_chips(variant: str, images: list[np.ndarray], boxes: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """150 x 150 chips of every image (its centre square where no face was found)."""
    if variant == "dlib-sp5":
        import dlib

        predictor = dlib.shape_predictor(str(REGISTRY["dlib-resnet"].source.locate(SHAPE_PREDICTOR)))

        def chip(i: int) -> np.ndarray:
            shape = predictor(images[i], dlib.rectangle(*(round(v) for v in boxes[i])))
            return dlib.get_face_chip(images[i], shape, size=150, padding=DLIB_PADDING)
    else:
        def chip(i: int) -> np.ndarray:
            return bilinear_warp(images[i], landmarks[i], "chip", 150, SUBSETS[variant])

    found = ~np.isnan(boxes[:, 0])
    return np.stack([chip(i) if found[i] else images[i][50:200, 50:200] for i in range(len(images))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="five,eyes-nose,eyes-mouth,eyes,dlib-sp5")
    parser.add_argument("--flip", action="store_true", help="also embed the mirror image (test-time augmentation)")
    args = parser.parse_args()

    pairs = read_lfw_pairs(LFW / "pairs.txt", LFW / "lfw-deepfunneled")
    paths = sorted({p for pair in pairs for p in (pair.a, pair.b)})
    index = {p: i for i, p in enumerate(paths)}
    boxes, landmarks = detections(paths, ROOT / "bench/out/lfw/dlib-alignment/detections.npz")
    images = [load_image(p) for p in paths]
    model = fnet.load_model("dlib-resnet", device="cpu")
    a = np.array([index[p.a] for p in pairs])
    b = np.array([index[p.b] for p in pairs])
    same, folds = np.array([p.same for p in pairs]), np.array([p.fold for p in pairs])
    found = ~np.isnan(boxes[:, 0])
    print(f"LFW View 2: {len(pairs)} pairs, {len(paths)} images, {int((~found).sum())} without a detected face (centre crop used)")
    print("| chips from | accuracy (10-fold) | VAL @ FAR=1e-3 | seconds |")
    print("| --- | --- | --- | --- |")
    for variant in args.variants.split(","):
        start = time.perf_counter()
        chips = make_chips(variant, images, boxes, landmarks)
        emb = model.embed(chips, flip=args.flip)
        distances = ((emb[a] - emb[b]) ** 2).sum(1)
        acc = kfold_accuracy(distances, same, folds)
        val, val_std, _ = kfold_val_at_far(distances, same, folds)
        print(f"| {variant}{' + flip' if args.flip else ''} | {acc.mean:.2%} ± {acc.standard_error:.2%} | {val:.2%} ± {val_std:.2%} "
              f"| {time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()
