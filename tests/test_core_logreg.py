"""Logistic regression and cross-validation (app.core.logreg) on small numpy sets with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.logreg import Standardiser, cross_validate, fit_logreg, separability, sigmoid, stratified_folds
from app.errors import OptionError


def test_sigmoid_is_stable_and_symmetric():
    t = np.array([-1000.0, -3.0, 0.0, 3.0, 1000.0])
    s = sigmoid(t)
    assert np.all(np.isfinite(s)) and s[0] == 0.0 and s[-1] == 1.0 and s[2] == 0.5
    np.testing.assert_allclose(s[1] + s[3], 1.0)


def test_standardiser_ignores_nan_and_constant_columns():
    X = np.array([[1.0, 5.0, np.nan], [3.0, 5.0, 2.0], [np.nan, 5.0, 4.0]])
    sc = Standardiser.fit(X)
    np.testing.assert_allclose(sc.mean, [2.0, 5.0, 3.0])
    np.testing.assert_allclose(sc.std, [1.0, 1.0, 1.0])  # constant column -> std 1
    z = sc.apply(X)
    assert np.all(np.isfinite(z)) and z[2, 0] == 0.0 and z[0, 2] == 0.0  # NaN -> the mean
    np.testing.assert_allclose(z[:, 1], 0.0)


def test_fit_matches_the_known_optimum_on_a_one_feature_problem():
    # the gradient of the mean log loss + l2/2 w^2 vanishes at the fitted weights
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 1))
    y = (rng.random(200) < sigmoid(2.0 * x[:, 0])).astype(int)
    m = fit_logreg(x, y, l2=0.05)
    z = m.scaler.apply(x)[:, 0]
    p = sigmoid(m.w[0] * z + m.b)
    assert abs(np.mean((p - y) * z) + 0.05 * m.w[0]) < 1e-8
    assert abs(np.mean(p - y)) < 1e-6  # bias not penalised: mean prediction = base rate
    assert m.w[0] > 0.5 and m.steps < 30


def test_stratified_folds_partition_and_balance():
    y = np.r_[np.zeros(13, int), np.ones(7, int)]
    folds = stratified_folds(y, 5, seed=3)
    assert sorted(np.concatenate(folds).tolist()) == list(range(20))
    for f in folds:
        assert 2 <= (y[f] == 0).sum() <= 3 and 1 <= (y[f] == 1).sum() <= 2
    assert all(np.array_equal(a, b) for a, b in zip(folds, stratified_folds(y, 5, seed=3)))
    assert not all(np.array_equal(a, b) for a, b in zip(folds, stratified_folds(y, 5, seed=4)))
    with pytest.raises(ValueError, match="k must be"):
        stratified_folds(y, 1)


def test_separable_sets_are_told_apart():
    rng = np.random.default_rng(1)
    a = rng.normal(0.0, 1.0, size=(60, 4))
    b = rng.normal(0.0, 1.0, size=(80, 4))
    b[:, 2] += 6.0  # one feature separates the sets
    res = separability(a, b, k=5, seed=0)
    assert res.accuracy >= 0.97 and res.n_per_class == 60 and res.k == 5 and res.features == 4
    s = res.summary()
    assert s["accuracy"] == res.accuracy and s["folds"] == 5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_distribution_is_near_chance(seed):
    rng = np.random.default_rng(100 + seed)
    a = rng.normal(size=(100, 6))
    b = rng.normal(size=(100, 6))
    res = separability(a, b, k=5, repeats=3, seed=seed)
    assert 0.35 <= res.accuracy <= 0.65
    assert len(res.fold_accuracy) == 15


def test_identical_sets_are_at_chance():
    rng = np.random.default_rng(7)
    a = rng.normal(size=(80, 3))
    res = separability(a, a.copy(), k=4, seed=0)
    assert 0.35 <= res.accuracy <= 0.65


def test_a_slight_shift_lies_between_chance_and_perfect():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(300, 2))
    b = rng.normal(size=(300, 2)) + np.array([1.0, 0.0])
    acc = separability(a, b, seed=0).accuracy
    assert 0.6 < acc < 0.8  # Bayes accuracy for a 1-sigma shift is Phi(0.5) = 0.69


def test_missing_values_and_bad_input():
    a = np.array([[0.0, np.nan], [0.1, 1.0], [0.2, np.nan], [0.3, 2.0]])
    b = a + np.array([5.0, 0.0])
    assert cross_validate(np.vstack([a, b]), np.r_[0, 0, 0, 0, 1, 1, 1, 1], k=5).mean() == 1.0  # k lowered to 4
    with pytest.raises(ValueError, match="at least 2 rows"):
        cross_validate(np.zeros((3, 1)), np.array([0, 0, 1]))
    with pytest.raises(ValueError, match="labels"):
        fit_logreg(np.zeros((2, 1)), np.array([0, 2]))
    with pytest.raises(ValueError, match="infinite"):
        fit_logreg(np.array([[np.inf], [0.0]]), np.array([0, 1]))
    with pytest.raises(OptionError, match="l2"):
        fit_logreg(np.zeros((2, 1)), np.array([0, 1]), l2=0.0)
    with pytest.raises(ValueError, match="same d"):
        separability(np.zeros((3, 2)), np.zeros((3, 3)))
