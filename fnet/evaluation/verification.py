"""Verification results on a list of pairs: the paper's metrics (10-fold accuracy, VAL at a FAR, ROC AUC, EER)."""

from __future__ import annotations

import dataclasses

import numpy as np

from fnet.evaluation.metrics import (
    best_threshold,
    equal_error_rate,
    kfold_accuracy,
    kfold_val_at_far,
    roc_auc,
    squared_distances,
    unit_rows,
)
from fnet.io.pairs import Pair


@dataclasses.dataclass
class Evaluation:
    pairs: list[Pair]
    a: np.ndarray  # embeddings of each pair's first image
    b: np.ndarray  # and of its second
    same: np.ndarray
    folds: np.ndarray
    far_target: float = 1e-3
    fallbacks: int = 0  # images without a detected face, embedded from a centre crop
    subtract_mean: bool = False

    @property
    def distances(self) -> np.ndarray:
        """Squared L2 per pair (after subtracting the mean of all pairs, with subtract_mean)."""
        return self._distances(np.ones(len(self.pairs), bool))

    def _distances(self, mean_of: np.ndarray) -> np.ndarray:
        if not self.subtract_mean:
            return squared_distances(self.a, self.b)
        mean = np.concatenate([self.a[mean_of], self.b[mean_of]]).mean(0)
        # squared L2 of the re-normalised vectors ranks as the reference's angular distance
        return squared_distances(unit_rows(self.a - mean), unit_rows(self.b - mean))

    def fold_distances(self) -> np.ndarray:
        """For the k-fold metrics: one row per fold, the mean taken over the other folds only."""
        if not self.subtract_mean:
            return self.distances
        return np.stack([self._distances(self.folds != fold) for fold in np.unique(self.folds)])

    def metrics(self) -> dict:
        per_fold = self.fold_distances()
        folds = kfold_accuracy(per_fold, self.same, self.folds)
        val, val_std, far = kfold_val_at_far(per_fold, self.same, self.folds, self.far_target)
        distances = self.distances
        return {
            "pairs": len(self.pairs),
            "same_pairs": int(self.same.sum()),
            "folds": len(np.unique(self.folds)),
            "accuracy": folds.mean,
            "accuracy_std": folds.std,
            "accuracy_standard_error": folds.standard_error,
            "val": val,
            "val_std": val_std,
            "far": far,
            "far_target": self.far_target,
            "auc": roc_auc(distances, self.same),
            "eer": equal_error_rate(distances, self.same),
            "best_threshold": best_threshold(distances, self.same),
            "fold_thresholds": folds.thresholds.round(4).tolist(),
            "subtract_mean": self.subtract_mean,
            "images_without_detected_face": self.fallbacks,
            "val_note": self.val_note(),
        }

    def val_note(self) -> str | None:
        """Why VAL is not measured at the asked FAR (too few different pairs to set its threshold), or None."""
        folds = len(np.unique(self.folds))
        calibration = int((~self.same).sum() * (folds - 1) / folds) if folds > 1 else int((~self.same).sum())
        if calibration * self.far_target >= 1:
            return None
        return (
            f"VAL at FAR={self.far_target:g} needs at least {int(np.ceil(1 / self.far_target)):,} different-person pairs "
            f"to set its threshold; the folds that set it hold {calibration:,}, so no false accept is allowed (FAR 0)"
        )

    def worst(self, count: int = 8) -> tuple[list[int], list[int]]:
        """Indices of the worst false accepts (nearest different pairs) and false rejects (farthest same pairs)."""
        threshold = best_threshold(self.distances, self.same)
        order = np.argsort(self.distances)
        false_accepts = [int(i) for i in order if not self.same[i] and self.distances[i] <= threshold][:count]
        false_rejects = [int(i) for i in order[::-1] if self.same[i] and self.distances[i] > threshold][:count]
        return false_accepts, false_rejects
