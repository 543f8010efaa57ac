"""Verification metrics on small hand-made distance sets whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from fnet.evaluation.metrics import (
    best_threshold,
    equal_error_rate,
    kfold_accuracy,
    kfold_val_at_far,
    roc_auc,
    squared_distances,
    val_at_far,
    val_far,
)


def test_squared_distances_by_hand():
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    b = np.array([[0.0, 1.0], [0.0, 1.0]])
    np.testing.assert_allclose(squared_distances(a, b), [2.0, 0.0])


def test_best_threshold_separates_a_separable_set():
    d = np.array([0.1, 0.2, 0.3, 1.0, 1.1, 1.2])
    same = np.array([1, 1, 1, 0, 0, 0], bool)
    t = best_threshold(d, same)
    assert 0.3 < t < 1.0


def test_val_far_counts_by_hand():
    d = np.array([0.1, 0.5, 0.9, 0.4, 1.5, 2.0])
    same = np.array([1, 1, 1, 0, 0, 0], bool)
    val, far = val_far(d, same, 0.5)
    assert val == pytest.approx(2 / 3) and far == pytest.approx(1 / 3)


def test_val_at_far_never_exceeds_the_far_target():
    rng = np.random.default_rng(0)
    same_d, diff_d = rng.normal(0.6, 0.2, 3000), rng.normal(1.6, 0.2, 3000)
    d = np.concatenate([same_d, diff_d])
    same = np.r_[np.ones(3000, bool), np.zeros(3000, bool)]
    val, threshold = val_at_far(d, same, 1e-3)
    far = (diff_d <= threshold).mean()
    assert far <= 1e-3
    # 3 false accepts allowed of 3000: the threshold sits just below the 4th smallest different distance
    assert (diff_d <= threshold).sum() == 3
    assert val == pytest.approx((same_d <= threshold).mean())


def test_kfold_accuracy_on_a_known_split():
    # Fold 0: same 0.2, 0.4; different 1.75, 1.8. Fold 1: same 0.3, 1.5; different 1.7, 1.9.
    d = np.array([0.2, 0.4, 1.75, 1.8, 0.3, 1.5, 1.7, 1.9])
    same = np.array([1, 1, 0, 0, 1, 1, 0, 0], bool)
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    result = kfold_accuracy(d, same, folds)
    # Fold 0 is tested with fold 1's threshold: the midpoint of 1.5 and 1.7 -> all four right.
    assert result.thresholds[0] == pytest.approx(1.6)
    assert result.accuracies[0] == 1.0
    # Fold 1 is tested with fold 0's threshold: the midpoint of 0.4 and 1.75 -> the same pair at 1.5 is rejected.
    assert result.thresholds[1] == pytest.approx(1.075)
    assert result.accuracies[1] == 0.75
    assert result.mean == pytest.approx(0.875)


def test_kfold_threshold_never_sees_its_test_fold():
    rng = np.random.default_rng(1)
    d = rng.uniform(0, 2, 200)
    same = rng.random(200) < 0.5
    folds = np.repeat(np.arange(10), 20)
    base = kfold_accuracy(d, same, folds)
    d2 = d.copy()
    d2[folds == 3] = rng.uniform(0, 2, 20)  # change only fold 3's data
    changed = kfold_accuracy(d2, same, folds)
    assert changed.thresholds[3] == base.thresholds[3]


def test_kfold_val_at_far_sets_thresholds_on_training_folds():
    rng = np.random.default_rng(3)
    same_d, diff_d = rng.normal(0.6, 0.2, 3000), rng.normal(1.6, 0.2, 3000)
    d = np.concatenate([same_d, diff_d])
    same = np.r_[np.ones(3000, bool), np.zeros(3000, bool)]
    folds = np.r_[np.arange(3000) % 10, np.arange(3000) % 10]
    val, val_std, far = kfold_val_at_far(d, same, folds, 1e-3)
    # the populations are 5 sigma apart: about 99.9% of same pairs lie below the 1e-3 FAR threshold
    assert 0.97 < val <= 1.0 and val_std < 0.02 and far < 0.005


def test_roc_auc_and_eer_by_hand():
    d = np.array([0.1, 0.2, 0.3, 0.4])
    same = np.array([1, 1, 0, 0], bool)
    assert roc_auc(d, same) == pytest.approx(1.0)
    assert equal_error_rate(d, same) == pytest.approx(0.0)
    swapped = np.array([0, 0, 1, 1], bool)  # every same pair farther than every different one
    assert roc_auc(d, swapped) == pytest.approx(0.0)
    overlap = np.array([1, 0, 1, 0], bool)  # 0.1 same, 0.2 diff, 0.3 same, 0.4 diff
    assert roc_auc(d, overlap) == pytest.approx(0.75)
    assert equal_error_rate(d, overlap) == pytest.approx(0.5)


def test_mean_subtraction_uses_only_training_folds():
    from fnet.evaluation.verification import Evaluation

    rng = np.random.default_rng(5)
    offset = np.r_[3.0, np.zeros(7)]  # a dataset-wide offset that hides the identity signal
    people = rng.normal(size=(40, 8))
    a = people + offset + rng.normal(scale=0.2, size=people.shape)
    b = np.where(np.arange(40)[:, None] % 2 == 0, people, rng.normal(size=people.shape)) + offset
    same, folds = np.arange(40) % 2 == 0, np.arange(40) // 10  # 5 same + 5 different pairs per fold
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
    plain = Evaluation([None] * 40, unit(a), unit(b), same, folds)
    centred = Evaluation([None] * 40, a, b, same, folds, subtract_mean=True)
    rows = centred.fold_distances()
    assert rows.shape == (4, 40)
    # each row's mean comes from the other three folds: changing fold 0's data leaves row 0 alone
    a2 = a.copy()
    a2[folds == 0] += 5.0
    assert np.allclose(Evaluation([None] * 40, a2, b, same, folds, subtract_mean=True).fold_distances()[0][folds != 0], rows[0][folds != 0])
    # row 2 by hand: subtract the mean of folds 0, 1, 3; renormalise; squared L2
    mean = np.concatenate([a[folds != 2], b[folds != 2]]).mean(0)
    by_hand = ((unit(a - mean) - unit(b - mean)) ** 2).sum(1)
    np.testing.assert_allclose(rows[2], by_hand, rtol=1e-10)
    assert plain.fold_distances().ndim == 1  # without the option: one shared vector
    assert centred.metrics()["subtract_mean"] and 0.5 <= centred.metrics()["accuracy"] <= 1.0
