"""Does a training-fold statistic beyond the mean help on LFW? PCA whitening, fold by fold.

`--subtract-mean` (the FaceNet reference's protocol) subtracts the nine training folds' mean
embedding. This goes one step further, still unsupervised and inside the protocol: for each
test fold, the training folds' embeddings give a covariance C = V diag(w) V'; embeddings
are mapped to (x - mean) V diag(w + eps mean(w))^-power and renormalised. power 0 is plain
mean subtraction, 0.5 full whitening. The statistics count every pair entry, as the
reference's mean does (an image in three pairs counts three times); one row takes each
distinct image once instead. The strength is also chosen without the test fold: by the
accuracy of an inner 9-fold cross-validation on the training folds ("nested").

Uses the crop-m32 embeddings bench/lfw.py cached.

    python bench/lfw_whitening.py
"""

from __future__ import annotations

import numpy as np
from lfw_reference import IMAGES, LFW, cached_embeddings

from fnet.evaluation.metrics import FoldResult, best_threshold, squared_distances, unit_rows
from fnet.pipeline.evaluate import read_pairs

STRENGTHS = ((0.0, 0.0), (0.25, 1.0), (0.25, 0.1), (0.5, 1.0), (0.5, 0.1))  # (power, eps)


def whitened_distances(x: np.ndarray, a: np.ndarray, b: np.ndarray, fit_rows: np.ndarray, power: float, eps: float) -> np.ndarray:
    """fit_rows: the embeddings the statistics come from (repeats count as often as they appear)."""
    fit = x[fit_rows]
    mean = fit.mean(0)
    w, v = np.linalg.eigh(np.cov((fit - mean).T))
    transform = v * (np.maximum(w, 0) + eps * w.mean()) ** -power
    y = unit_rows((x - mean) @ transform)
    return squared_distances(y[a], y[b])


def fold_accuracy(d: np.ndarray, same: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    return float(np.mean((d[test] <= best_threshold(d[train], same[train])) == same[test]))


def main() -> None:
    pairs = read_pairs(LFW / "pairs.txt", IMAGES)
    paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
    x = cached_embeddings("crop-m32", paths)
    if x is None:
        raise SystemExit("run bench/lfw.py first (it caches the crop-m32 embeddings)")
    row = {path: i for i, path in enumerate(paths)}
    a, b = np.array([row[p.a] for p in pairs]), np.array([row[p.b] for p in pairs])
    same, folds = np.array([p.same for p in pairs]), np.array([p.fold for p in pairs])

    fixed = {s: [] for s in STRENGTHS}
    nested, distinct_mean = [], []
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        fit_rows = np.r_[a[train], b[train]]  # as the reference's mean: every pair entry, repeats included
        d = {s: whitened_distances(x, a, b, fit_rows, *s) for s in STRENGTHS}
        for s in STRENGTHS:
            fixed[s].append(fold_accuracy(d[s], same, train, test))
        distinct_mean.append(fold_accuracy(whitened_distances(x, a, b, np.unique(fit_rows), 0, 0), same, train, test))
        inner = {s: np.mean([fold_accuracy(d[s], same, train & (folds != j), folds == j) for j in np.unique(folds[train])]) for s in STRENGTHS}
        nested.append(fold_accuracy(d[max(inner, key=inner.get)], same, train, test))

    print(f"LFW View 2 ({IMAGES.name}), crop-m32 embeddings, 10 folds")
    print("| training-fold transform | accuracy (10-fold, ± s.e.) |")
    print("| --- | --- |")
    rows = {f"power {p}, eps {e}" + (" (= mean subtraction)" if p == 0 else ""): r for (p, e), r in fixed.items()}
    rows["power 0 with the mean of the distinct images (each counted once)"] = distinct_mean
    for name, r in {**rows, "strength chosen by nested cross-validation": nested}.items():
        r = FoldResult(np.array(r), np.array([]))
        print(f"| {name} | {r.mean:.2%} ± {r.standard_error:.2%} |")


if __name__ == "__main__":
    main()
