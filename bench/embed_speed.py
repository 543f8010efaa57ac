"""Embedding throughput: fnet's Embedder against OpenCV DNN running the same TensorFlow graph.

Both embed the same real face crops (LFW centre crops from ../shared/data) in one run; the
result is printed as faces/s and as a ratio. OpenCV DNN runs this graph at batch 1 only (its
Reshape nodes fix the batch), so that is its figure; fnet is measured at several batch sizes.

    python bench/embed_speed.py [--faces 256] [--batch-sizes 1,8,32,64] [--device auto]
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

import numpy as np
import torch

import fnet
from fnet.core.embedder import standardize
from fnet.core.pretrained import REGISTRY

LFW = Path(__file__).resolve().parents[2] / "shared/data/lfw/lfw-deepfunneled"


def real_crops(count: int) -> np.ndarray:
    paths = sorted(LFW.glob("*/*.jpg"))[:: max(1, len(list(LFW.glob("*/*.jpg"))) // count)][:count]
    return np.stack([fnet.load_image(p)[45:205, 45:205] for p in paths])


def rate(fn, count: int, repeats: int) -> float:
    fn()  # warm-up: allocator, oneDNN kernels, cuDNN autotune
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=128)
    parser.add_argument("--batch-sizes", default="1,8,32,64")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precisions", default="auto", help="comma list: auto, fp32, fp16, bf16")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    crops = real_crops(args.faces)
    print(f"{len(crops)} real LFW face crops, {torch.get_num_threads()} torch threads")

    opencv_rate = None
    try:
        import cv2

        source = REGISTRY["facenet-casia"].source
        net = cv2.dnn.readNetFromTensorflow(str(source.locate(*source.files)))
        blobs = standardize(torch.from_numpy(crops).permute(0, 3, 1, 2).float(), "fixed").numpy()

        def opencv_all() -> None:
            for blob in blobs:
                net.setInput(blob[None])
                net.forward()

        opencv_rate = rate(opencv_all, len(crops), args.repeats)
        print(f"OpenCV {cv2.__version__} DNN, batch 1: {opencv_rate:7.1f} faces/s")
    except ImportError:
        print("OpenCV not installed: no peer figure (pip install opencv-python-headless)")

    for precision in args.precisions.split(","):
        model = fnet.load_model(device=args.device, precision=precision)
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            faces_per_s = rate(functools.partial(model.embed, crops, batch_size=batch), len(crops), args.repeats)
            ratio = f"  {faces_per_s / opencv_rate:4.2f}x OpenCV" if opencv_rate else ""
            print(f"fnet {model!r}, batch {batch:>3}: {faces_per_s:7.1f} faces/s{ratio}")


if __name__ == "__main__":
    main()
