"""The evaluate stage: a verification protocol (LFW pairs.txt or a CSV of pairs) -> the paper's metrics.

Images are aligned and embedded once through the embed stage into an HDF5 cache named by
the settings, so evaluating again with other metrics or thresholds costs nothing, and an
interrupted run resumes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from fnet.align import Aligner
from fnet.alignment import centre_crop
from fnet.core.embedder import Embedder
from fnet.embed import FALLBACK_CROP, NO_BOX, Item, embed_tree
from fnet.evaluation.metrics import (
    best_threshold,
    equal_error_rate,
    kfold_accuracy,
    kfold_val_at_far,
    roc_auc,
    squared_distances,
    unit_rows,
)
from fnet.evaluation.report import html_report
from fnet.io.images import load_image
from fnet.io.pairs import Pair, PairsError, read_csv_pairs, read_lfw_pairs
from fnet.io.store import Store


def read_pairs(pairs_file: Path, data_dir: Path) -> list[Pair]:
    """LFW's pairs.txt when its first line is '<folds> <n>', else a CSV of pairs."""
    first = Path(pairs_file).read_text().split("\n", 1)[0].split()
    if len(first) == 2 and all(v.isdigit() for v in first):
        return read_lfw_pairs(pairs_file, data_dir)
    return read_csv_pairs(pairs_file, data_dir)


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


def evaluate(
    data_dir: Path,
    pairs: list[Pair],
    model: Embedder,
    aligner: Aligner | None,
    cache: Path,
    flip: bool = False,
    far_target: float = 1e-3,
    subtract_mean: bool = False,
    on_start=None,
    on_item=None,
) -> Evaluation:
    """Embed every image of the pairs (cached in `cache`) and pair them up.

    subtract_mean: the FaceNet reference's protocol: subtract the training folds' mean
    embedding before comparing (it removes a dataset-wide offset; threshold-free metrics
    use the mean of all pairs).
    """
    data_dir = Path(data_dir)
    if not pairs:
        raise PairsError("no pairs to evaluate")
    images = sorted({p.a for p in pairs} | {p.b for p in pairs})
    missing = [p for p in images if not p.is_file()]
    if missing:
        raise PairsError(f"{len(missing)} paired images not found, e.g. {missing[0]}")
    items = [Item(p, p.relative_to(data_dir).as_posix() if p.is_relative_to(data_dir) else str(p), "", NO_BOX) for p in images]
    report = embed_tree(
        data_dir, cache, model, aligner, flip=flip, items=items, fallback_crop=FALLBACK_CROP if aligner else None,
        on_start=on_start, on_item=on_item,
    )
    if report.errors:
        raise PairsError(f"{report.errors} paired images could not be read (see the messages above)")
    with Store(cache) as store:
        rows = dict(zip(store.paths(), store.embeddings()))
        fallbacks = int(np.isnan(store.boxes()[:, 0]).sum()) if aligner else 0
    key = {p: i.rel for p, i in zip(images, items)}
    a = np.stack([rows[key[p.a]] for p in pairs])
    b = np.stack([rows[key[p.b]] for p in pairs])
    folds = np.array([p.fold for p in pairs])
    if len(np.unique(folds)) < 2:  # a one-fold list: cross-validate over ten round-robin folds
        folds = np.arange(len(pairs)) % min(10, len(pairs))
    return Evaluation(pairs, a, b, np.array([p.same for p in pairs]), folds, far_target, fallbacks, subtract_mean)


def write_report(path: Path, title: str, metrics: dict, result: Evaluation, aligner: Aligner | None, size: int) -> Path:
    """report.html: the metrics, roc.png, and the worst false accepts / rejects (re-aligned for thumbnails)."""

    def crop(image_path: Path) -> np.ndarray:
        image = load_image(image_path)
        if aligner is None:
            return image
        faces = aligner.align([image])[0]
        return faces[0].crop if faces else centre_crop(image, FALLBACK_CROP, size)

    false_accepts, false_rejects = result.worst()
    mistakes = {
        heading: [
            (str(result.pairs[i].a), str(result.pairs[i].b), float(result.distances[i]), crop(result.pairs[i].a), crop(result.pairs[i].b))
            for i in picks
        ]
        for heading, picks in (
            ("Worst false accepts (different people, nearest)", false_accepts),
            ("Worst false rejects (same person, farthest)", false_rejects),
        )
    }
    return html_report(title, metrics, mistakes, "roc.png", path)
