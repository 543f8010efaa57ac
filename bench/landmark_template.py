"""Derive the `similarity` alignment template: mean landmark positions in `crop`-mode crops.

Detects faces in LFW photos with fnet's MTCNN, maps the five landmarks into the
coordinates of the 160 x 160 crop-mode crop (margin 32), and prints their mean, the values
of fnet.crops.TEMPLATE_160. Using it, both alignment modes frame faces alike.

    python bench/landmark_template.py [--images 400]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import fnet
from fnet.core.detector import FaceDetector
from fnet.crops import crop_region, pick_faces

LFW = Path(__file__).resolve().parents[2] / "shared/data/lfw/lfw-deepfunneled"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--margin", type=float, default=32)
    args = parser.parse_args()

    paths = sorted(LFW.glob("*/*.jpg"))
    paths = paths[:: max(1, len(paths) // args.images)][: args.images]
    detector = FaceDetector()
    points = []
    for start in range(0, len(paths), 16):
        images = [fnet.load_image(p) for p in paths[start : start + 16]]
        for image, faces in zip(images, detector.detect(images)):
            for i in pick_faces(faces, image.shape, "center"):
                left, top, right, bottom = crop_region(faces[i].box, args.size, args.margin)
                scale = np.array([args.size / (right - left), args.size / (bottom - top)])
                points.append((faces[i].landmarks - [left, top]) * scale)
    points = np.array(points)
    print(f"{len(points)} faces from {len(paths)} LFW photos; mean landmarks in {args.size}px crops (std in brackets):")
    for name, mean, std in zip(("left eye", "right eye", "nose", "mouth left", "mouth right"), points.mean(0), points.std(0)):
        print(f"  {name:<12} ({mean[0]:6.1f}, {mean[1]:6.1f})   [{std[0]:.1f}, {std[1]:.1f}]")
    print("TEMPLATE_160 =", np.round(points.mean(0) * 160 / args.size, 1).tolist())


if __name__ == "__main__":
    main()
