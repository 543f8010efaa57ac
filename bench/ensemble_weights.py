"""The weight of each member of facenet-casia+dlib-resnet, chosen on LFW's training folds only.

Reads the ensemble's LFW embeddings that `python bench/lfw.py --model facenet-casia+dlib-resnet
--settings wide,wide-flip` cached, splits them back into the members' unit embeddings, and for
each of the ten folds picks dlib-resnet's weight (facenet-casia's is 1) and the threshold on
the nine other folds, then tests on the held-out fold. Printed: the members alone (on the same
views), the ensemble at equal weights, and the ensemble with its weight chosen per fold
(the number to quote), with the weights and thresholds the folds chose; the median goes
into the registry.

    python bench/ensemble_weights.py [--setting wide-flip] [--own-crops]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fnet.evaluation.metrics import best_threshold, kfold_accuracy, kfold_val_at_far
from fnet.io.pairs import read_lfw_pairs
from fnet.io.stores import open_store

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared/data/lfw"
NAME = "facenet-casia+dlib-resnet"
FACENET_DIM = 512
WEIGHTS = np.round(np.arange(0.5, 3.01, 0.1), 2)  # dlib-resnet's, facenet-casia's being 1


def pair_distances(store: Path, part: slice = slice(None)) -> np.ndarray:
    """Squared distances of LFW's 6,000 pairs from a store's embeddings (the `part` of each, made unit length)."""
    images = LFW / "lfw-deepfunneled"
    with open_store(store) as opened:
        rows = dict(zip(opened.paths(), opened.embeddings()))

    def unit(path: Path) -> np.ndarray:
        v = rows[path.relative_to(images).as_posix()][part]
        return v / np.linalg.norm(v)

    return np.array([((unit(p.a) - unit(p.b)) ** 2).sum() for p in read_lfw_pairs(LFW / "pairs.txt", images)])


def member_distances(setting: str, own_crops: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(facenet squared distances, dlib squared distances, same, folds) of the 6,000 pairs.

    own_crops: each member's embeddings of its own alignment (facenet-casia's crop, margin 32;
    dlib-resnet's chip) from bench/lfw.py's caches, instead of the views of the ensemble's crop.
    """
    out = ROOT / "bench/out/lfw"
    flip = "-flip" if setting.endswith("-flip") else ""
    if own_crops:
        facenet = pair_distances(out / f"embeddings-crop-m32{flip}.h5")
        dlib = pair_distances(out / "dlib-resnet" / f"embeddings-chip{flip}.h5")
    else:
        store = out / NAME / f"embeddings-{setting}.h5"
        facenet, dlib = pair_distances(store, slice(0, FACENET_DIM)), pair_distances(store, slice(FACENET_DIM, None))
    pairs = read_lfw_pairs(LFW / "pairs.txt", LFW / "lfw-deepfunneled")
    return facenet, dlib, np.array([p.same for p in pairs]), np.array([p.fold for p in pairs])


def combined(facenet: np.ndarray, dlib: np.ndarray, weight: float) -> np.ndarray:
    """The ensemble's squared distance with dlib-resnet weighted `weight` (facenet-casia 1)."""
    return (facenet + weight**2 * dlib) / (1 + weight**2)


def train_accuracy(distances: np.ndarray, same: np.ndarray) -> float:
    """Accuracy at the best threshold for these pairs (ties in max(): the first, smallest weight)."""
    return float(np.mean((distances <= best_threshold(distances, same)) == same))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setting", default="wide-flip")
    parser.add_argument("--own-crops", action="store_true", help=(
        "each member on its own alignment (needs `bench/lfw.py --settings crop-m32[,crop-m32-flip]` and "
        "`--model dlib-resnet --settings chip[,chip-flip]`): what the ensemble would reach with one crop per member"))
    args = parser.parse_args()
    facenet, dlib, same, folds = member_distances(args.setting, args.own_crops)

    def row(label: str, distances: np.ndarray) -> None:
        acc = kfold_accuracy(distances, same, folds)
        val, val_std, _ = kfold_val_at_far(distances, same, folds)
        print(f"| {label} | {acc.mean:.2%} ± {acc.standard_error:.2%} | {val:.2%} ± {val_std:.2%} | {np.median(acc.thresholds):.3f} |")

    source = "each member's own alignment" if args.own_crops else f"{NAME} embeddings"
    print(f"LFW View 2, {len(same)} pairs, 10 folds; {source} ({args.setting})")
    print("| distances | accuracy (10-fold) | VAL @ FAR=1e-3 | threshold (median) |")
    print("| --- | --- | --- | --- |")
    row("facenet-casia alone" + ("" if args.own_crops else " (its view of the wide crop)"), facenet)
    row("dlib-resnet alone" + ("" if args.own_crops else " (its view: the chip)"), dlib)
    row("ensemble, equal weights", combined(facenet, dlib, 1.0))

    chosen, accuracies, thresholds = [], [], []
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold

        weight = max(WEIGHTS, key=lambda w, train=train: train_accuracy(combined(facenet, dlib, w)[train], same[train]))
        d = combined(facenet, dlib, weight)
        threshold = best_threshold(d[train], same[train])
        chosen.append(weight)
        thresholds.append(threshold)
        accuracies.append(float(np.mean((d[test] <= threshold) == same[test])))
    accuracies = np.array(accuracies)
    print(f"| ensemble, dlib-resnet's weight chosen on the training folds | {accuracies.mean():.2%} ± "
          f"{accuracies.std(ddof=1) / np.sqrt(len(accuracies)):.2%} | | {np.median(thresholds):.3f} |")
    print(f"weights chosen per fold: {', '.join(f'{w:g}' for w in chosen)} (median {np.median(chosen):g}); "
          f"thresholds: {', '.join(f'{t:.3f}' for t in thresholds)}")
    row(f"ensemble at the median weight {np.median(chosen):g} (for VAL; its accuracy used every fold)", combined(facenet, dlib, float(np.median(chosen))))


if __name__ == "__main__":
    main()
