"""Embedding throughput: fnet's Embedder against the peer that runs the same weights.

Both embed the same real face crops (LFW centre crops from ../shared/data) in one run; the
result is printed as faces/s and as a ratio. facenet-casia's peer is OpenCV DNN on the same
TensorFlow graph (batch 1 only: its Reshape nodes fix the batch); dlib-resnet's is dlib-bin
on the same .dat file, one face at a time as face_recognition calls it. fnet is measured at
several batch sizes.

    python bench/embed_speed.py [--model facenet-casia|dlib-resnet] [--faces 256] [--batch-sizes 1,8,32,64]
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


def real_crops(count: int, size: int = 160) -> np.ndarray:
    paths = sorted(LFW.glob("*/*.jpg"))[:: max(1, len(list(LFW.glob("*/*.jpg"))) // count)][:count]
    top = (250 - size) // 2
    return np.stack([fnet.load_image(p)[top : top + size, top : top + size] for p in paths])


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


def opencv_peer(crops: np.ndarray):
    """OpenCV DNN on facenet-casia's own graph, at batch 1 (the graph's reshapes fix it)."""
    import cv2

    source = REGISTRY["facenet-casia"].source
    net = cv2.dnn.readNetFromTensorflow(str(source.locate(*source.files)))
    blobs = standardize(torch.from_numpy(crops).permute(0, 3, 1, 2).float(), "fixed").numpy()

    def run() -> None:
        for blob in blobs:
            net.setInput(blob[None])
            net.forward()

    return f"OpenCV {cv2.__version__} DNN, batch 1", run


def dlib_peer(crops: np.ndarray):
    """dlib-bin on dlib-resnet's own file, one chip at a time, as face_recognition calls it."""
    import dlib

    source = REGISTRY["dlib-resnet"].source
    net = dlib.face_recognition_model_v1(str(source.locate(*source.files)))

    def run() -> None:
        for chip in crops:
            net.compute_face_descriptor(chip)

    return f"dlib {dlib.__version__}, one face at a time", run


PEERS = {"facenet-casia": opencv_peer, "dlib-resnet": dlib_peer}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="facenet-casia", choices=sorted(PEERS))
    parser.add_argument("--faces", type=int, default=128)
    parser.add_argument("--batch-sizes", default="1,8,32,64")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precisions", default="auto", help="comma list: auto, fp32, fp16, bf16")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    crops = real_crops(args.faces, REGISTRY[args.model].info.input_size)
    print(f"{len(crops)} real LFW face crops, {torch.get_num_threads()} torch threads")

    peer_rate = None
    try:
        name, run = PEERS[args.model](crops)
        peer_rate = rate(run, len(crops), args.repeats)
        print(f"{name}: {peer_rate:7.1f} faces/s")
    except ImportError as err:
        print(f"no peer figure ({err.name} is not installed; it is in the dev extra)")

    for precision in args.precisions.split(","):
        model = fnet.load_model(args.model, device=args.device, precision=precision)
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            faces_per_s = rate(functools.partial(model.embed, crops, batch_size=batch), len(crops), args.repeats)
            ratio = f"  {faces_per_s / peer_rate:4.2f}x the peer" if peer_rate else ""
            print(f"fnet {model!r}, batch {batch:>3}: {faces_per_s:7.1f} faces/s{ratio}")


if __name__ == "__main__":
    main()
