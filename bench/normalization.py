"""Which input normalisation does the pretrained model expect? Measure it on LFW.

Embeds the LFW View 2 pairs with fixed centre crops (no detector involved, so only the
normalisation and the crop vary) under 'fixed' ((x-127.5)/128) and 'prewhiten' (per image
mean/std), and prints the 10-fold accuracy and VAL@FAR=1e-3 of each.

    python bench/normalization.py [--lfw ../shared/data/lfw] [--crops 120,150]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import fnet
from fnet.evaluation.metrics import kfold_accuracy, squared_distances, val_at_far
from fnet.io.pairs import read_lfw_pairs


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return image[top : top + size, left : left + size]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", default=str(Path(__file__).resolve().parents[2] / "shared/data/lfw"))
    parser.add_argument("--crops", default="120,150", help="centre-crop sizes in pixels of the 250 x 250 images")
    parser.add_argument("--limit-folds", type=int, default=10)
    args = parser.parse_args()

    root = Path(args.lfw)
    pairs = [p for p in read_lfw_pairs(root / "pairs.txt", root / "lfw-deepfunneled") if p.fold < args.limit_folds]
    paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
    index = {path: i for i, path in enumerate(paths)}
    images = [fnet.load_image(path) for path in paths]
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    model = fnet.load_model()
    print(f"LFW View 2: {len(pairs)} pairs, {len(paths)} images; model {model.info.name}")
    print(f"{'crop':>5} {'normalisation':>13} {'accuracy':>16} {'VAL@FAR=1e-3':>13} {'threshold':>9} {'faces/s':>8}")
    for size in [int(s) for s in args.crops.split(",")]:
        crops = np.stack([centre_crop(image, size) for image in images])
        for normalization in ("fixed", "prewhiten"):
            model.info = model.info.replace(normalization=normalization)
            start = time.perf_counter()
            emb = model.embed(crops)
            rate = len(crops) / (time.perf_counter() - start)
            d = squared_distances(emb[[index[p.a] for p in pairs]], emb[[index[p.b] for p in pairs]])
            result = kfold_accuracy(d, same, folds)
            val, _ = val_at_far(d, same, 1e-3)
            print(
                f"{size:>5} {normalization:>13} {result.mean:>9.4f} ± {result.standard_error:.4f} "
                f"{val:>13.4f} {np.median(result.thresholds):>9.3f} {rate:>8.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
