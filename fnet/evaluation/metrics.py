"""Verification metrics of the FaceNet paper on squared L2 distances.

TA(d) = same pairs with D <= d, FA(d) = different pairs with D <= d,
VAL(d) = |TA(d)| / |P_same|, FAR(d) = |FA(d)| / |P_diff|.
"""

from __future__ import annotations

import dataclasses

import numpy as np


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise squared L2 distance between two (N, D) arrays."""
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return np.einsum("ij,ij->i", diff, diff)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row scaled to unit length (embeddings after averaging or shifting them)."""
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def candidate_thresholds(distances: np.ndarray) -> np.ndarray:
    """Midpoints between sorted distinct distances, plus both ends: every distinct decision."""
    values = np.unique(distances)
    return np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])


def accuracy_curve(distances: np.ndarray, same: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Accuracy of 'same iff D <= t' for each threshold t, in O((n + m) log n)."""
    order = np.sort(distances[same])
    diff_sorted = np.sort(distances[~same])
    true_accepts = np.searchsorted(order, thresholds, side="right")
    false_accepts = np.searchsorted(diff_sorted, thresholds, side="right")
    true_rejects = len(diff_sorted) - false_accepts
    return (true_accepts + true_rejects) / len(distances)


def best_threshold(distances: np.ndarray, same: np.ndarray) -> float:
    """The threshold with the highest accuracy (the middle of the best plateau on ties)."""
    thresholds = candidate_thresholds(distances)
    acc = accuracy_curve(distances, same, thresholds)
    best = np.flatnonzero(acc == acc.max())
    return float(thresholds[best[len(best) // 2]])


@dataclasses.dataclass(frozen=True)
class FoldResult:
    accuracies: np.ndarray  # per test fold
    thresholds: np.ndarray  # chosen on the other folds

    @property
    def mean(self) -> float:
        return float(self.accuracies.mean())

    @property
    def std(self) -> float:
        return float(self.accuracies.std())

    @property
    def standard_error(self) -> float:
        return float(self.accuracies.std(ddof=1) / np.sqrt(len(self.accuracies)))


def _fold_rows(distances: np.ndarray, folds: np.ndarray):
    """(fold, distances to use for it): one shared vector, or one row per fold (sorted fold ids)."""
    for index, fold in enumerate(np.unique(folds)):
        yield fold, (distances[index] if distances.ndim == 2 else distances)


def kfold_accuracy(distances: np.ndarray, same: np.ndarray, folds: np.ndarray) -> FoldResult:
    """LFW protocol: for each fold, pick the threshold on the others, test on it.

    distances: one vector, or one row per fold when they depend on the training folds
    (e.g. after subtracting the training folds' mean embedding).
    """
    distances, same, folds = np.asarray(distances, float), np.asarray(same, bool), np.asarray(folds)
    accuracies, thresholds = [], []
    for fold, d in _fold_rows(distances, folds):
        train, test = folds != fold, folds == fold
        threshold = best_threshold(d[train], same[train])
        accuracies.append(float(np.mean((d[test] <= threshold) == same[test])))
        thresholds.append(threshold)
    return FoldResult(np.asarray(accuracies), np.asarray(thresholds))


def val_far(distances: np.ndarray, same: np.ndarray, threshold: float) -> tuple[float, float]:
    """(VAL(d), FAR(d)) at one threshold d."""
    distances, same = np.asarray(distances, float), np.asarray(same, bool)
    accepted = distances <= threshold
    return float(accepted[same].mean()), float(accepted[~same].mean())


def val_at_far(distances: np.ndarray, same: np.ndarray, far_target: float = 1e-3) -> tuple[float, float]:
    """Largest VAL whose FAR <= far_target, and the threshold achieving it.

    The threshold is set just below the smallest different-pair distance that would push
    FAR over the target, so FAR <= target holds exactly on this data.
    """
    distances, same = np.asarray(distances, float), np.asarray(same, bool)
    diff_sorted = np.sort(distances[~same])
    allowed = int(np.floor(far_target * len(diff_sorted) + 1e-9))  # false accepts permitted
    if allowed >= len(diff_sorted):
        threshold = float(distances.max())
    else:
        threshold = float(np.nextafter(diff_sorted[allowed], -np.inf))
    return val_far(distances, same, threshold)[0], threshold


def kfold_val_at_far(distances: np.ndarray, same: np.ndarray, folds: np.ndarray, far_target: float = 1e-3) -> tuple[float, float, float]:
    """(mean VAL, std VAL, mean FAR) on the test folds, each with the threshold set on the other folds.

    This is how the FaceNet reference reports 'VAL @ FAR=1e-3' on LFW. distances as for
    kfold_accuracy.
    """
    distances, same, folds = np.asarray(distances, float), np.asarray(same, bool), np.asarray(folds)
    vals, fars = [], []
    for fold, d in _fold_rows(distances, folds):
        train, test = folds != fold, folds == fold
        _, threshold = val_at_far(d[train], same[train], far_target)
        val, far = val_far(d[test], same[test], threshold)
        vals.append(val)
        fars.append(far)
    return float(np.mean(vals)), float(np.std(vals)), float(np.mean(fars))


def roc_curve(distances: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(FAR, VAL, thresholds) for every distinct threshold, FAR ascending."""
    distances, same = np.asarray(distances, float), np.asarray(same, bool)
    thresholds = candidate_thresholds(distances)
    far = np.searchsorted(np.sort(distances[~same]), thresholds, side="right") / max((~same).sum(), 1)
    val = np.searchsorted(np.sort(distances[same]), thresholds, side="right") / max(same.sum(), 1)
    return far, val, thresholds


def roc_auc(distances: np.ndarray, same: np.ndarray) -> float:
    far, val, _ = roc_curve(distances, same)
    return float(np.sum((far[1:] - far[:-1]) * (val[1:] + val[:-1]) / 2))


def equal_error_rate(distances: np.ndarray, same: np.ndarray) -> float:
    """The error rate where false accepts (FAR) equal false rejects (1 - VAL)."""
    far, val, _ = roc_curve(distances, same)
    frr = 1 - val
    i = int(np.argmin(np.abs(far - frr)))
    return float((far[i] + frr[i]) / 2)
