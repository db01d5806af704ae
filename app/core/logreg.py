"""Logistic regression with stratified k-fold cross-validation: can a simple classifier tell two sets apart?

Numpy only, domain-free. Used by the music report ("are generated melodies distinguishable from real ones?"): an
accuracy of 0.5 means the two sets cannot be told apart by these features, 1.0 means they separate perfectly.

Model: p(y = 1 | x) = sigmoid(w . z + b) on standardised features z = (x - mean) / std (mean and std of the training
fold; a missing value (NaN) becomes the training mean, i.e. 0 after standardising; a constant column gets std 1).
Fit: Newton's method (iteratively reweighted least squares) on the mean log loss + l2 / 2 * |w|^2 (the bias is not
penalised), from w = 0; with l2 > 0 the objective is strictly convex, so it converges on separable data too.

Shapes: X (n, d) float, y (n,) in {0, 1}.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core.config import check_range

MAX_NEWTON_STEPS = 100
NEWTON_TOL = 1e-9
BIAS_RIDGE = 1e-8  # keeps the Hessian invertible along the bias when every prediction saturates


def sigmoid(t: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-t)), without overflow warnings."""
    t = np.asarray(t, float)
    out = np.empty_like(t)
    pos = t >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-t[pos]))
    e = np.exp(t[~pos])
    out[~pos] = e / (1.0 + e)
    return out


@dataclass(frozen=True)
class Standardiser:
    """Per-column mean and std of a training matrix (NaNs ignored); `apply` maps NaN to 0 (the mean)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray) -> "Standardiser":
        X = np.asarray(X, float)
        has = np.isfinite(X)
        count = has.sum(axis=0)
        total = np.where(has, X, 0.0).sum(axis=0)
        mean = np.divide(total, count, out=np.zeros(X.shape[1]), where=count > 0)
        var = np.where(has, (X - mean) ** 2, 0.0).sum(axis=0)
        var = np.divide(var, count, out=np.zeros(X.shape[1]), where=count > 0)
        std = np.sqrt(var)
        return cls(mean, np.where(std > 1e-12, std, 1.0))

    def apply(self, X: np.ndarray) -> np.ndarray:
        z = (np.asarray(X, float) - self.mean) / self.std
        return np.where(np.isfinite(z), z, 0.0)


@dataclass(frozen=True)
class LogReg:
    """A fitted model: weights (d,) and bias on standardised features."""

    scaler: Standardiser
    w: np.ndarray
    b: float
    steps: int

    def proba(self, X: np.ndarray) -> np.ndarray:
        """p(y = 1) per row, (n,)."""
        return sigmoid(self.scaler.apply(X) @ self.w + self.b)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """0/1 per row (p >= 0.5 -> 1), (n,) int."""
        return (self.proba(X) >= 0.5).astype(np.int64)


def _check_xy(X, y) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, float)
    y = np.asarray(y)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(f"expected X (n, d) and y (n,), got shapes {X.shape} and {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, got {sorted(set(np.unique(y).tolist()))}")
    if np.isinf(X).any():
        raise ValueError("X holds infinite values; pass finite numbers (NaN marks a missing value)")
    return X, y.astype(float)


def fit_logreg(X, y, l2: float = 0.01) -> LogReg:
    """Fit an L2-regularised logistic regression by Newton's method (see the module docstring)."""
    if not np.isfinite(l2):
        raise ValueError(f"l2 must be a finite number > 0, got {l2!r}")
    check_range("l2", l2, lo=0, lo_open=True)
    X, y = _check_xy(X, y)
    scaler = Standardiser.fit(X)
    Z = np.hstack([scaler.apply(X), np.ones((len(X), 1))])
    n, d = Z.shape
    ridge = np.full(d, float(l2))
    ridge[-1] = BIAS_RIDGE
    theta = np.zeros(d)
    steps = 0
    for steps in range(1, MAX_NEWTON_STEPS + 1):
        p = sigmoid(Z @ theta)
        grad = Z.T @ (p - y) / n + ridge * theta
        hess = (Z * (p * (1 - p))[:, None]).T @ Z / n + np.diag(ridge)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < NEWTON_TOL:
            break
    return LogReg(scaler, theta[:-1].copy(), float(theta[-1]), steps)


def stratified_folds(y, k: int, seed: int = 0) -> list[np.ndarray]:
    """k disjoint test-index arrays covering range(len(y)); each class is shuffled (seeded) and dealt round-robin,
    so every fold holds each class in proportion (sizes differ by at most one per class)."""
    y = np.asarray(y)
    if int(k) != k or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k!r}")
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        for j, i in enumerate(idx):
            folds[(j + offset) % k].append(int(i))
        offset += len(idx)  # the next class starts filling where this one stopped, so fold sizes stay even
    return [np.sort(np.array(f, dtype=np.int64)) for f in folds]


@dataclass(frozen=True)
class CVResult:
    """Cross-validated accuracy: mean and std over every test fold of every repeat."""

    fold_accuracy: np.ndarray
    n_per_class: int
    k: int
    repeats: int
    features: int

    @property
    def accuracy(self) -> float:
        return float(self.fold_accuracy.mean())

    @property
    def accuracy_std(self) -> float:
        return float(self.fold_accuracy.std())

    def summary(self) -> dict:
        return {"accuracy": self.accuracy, "accuracy_std": self.accuracy_std, "n_per_class": self.n_per_class,
                "folds": self.k, "repeats": self.repeats, "features": self.features}


def cross_validate(X, y, k: int = 5, l2: float = 0.01, seed: int = 0) -> np.ndarray:
    """Accuracy on each of k stratified test folds of a model fitted on the other folds, (k,).

    k is lowered to the size of the smaller class when that is smaller (every fold must hold both classes);
    ValueError when a class has fewer than 2 rows."""
    X, y = _check_xy(X, y)
    smaller = int(min((y == 0).sum(), (y == 1).sum()))
    if smaller < 2:
        raise ValueError(f"each class needs at least 2 rows for cross-validation, the smaller has {smaller}")
    folds = stratified_folds(y, min(int(k), smaller), seed)
    acc = []
    for test in folds:
        train = np.setdiff1d(np.arange(len(y)), test)
        model = fit_logreg(X[train], y[train], l2)
        acc.append(float((model.predict(X[test]) == y[test]).mean()))
    return np.array(acc)


def separability(a, b, k: int = 5, l2: float = 0.01, repeats: int = 1, seed: int = 0) -> CVResult:
    """How well logistic regression tells rows of `a` (label 0) from rows of `b` (label 1), both (n_a|n_b, d).

    Each repeat draws min(n_a, n_b) rows of each set without replacement (seeded; so 0.5 is chance) and runs
    stratified k-fold cross-validation; the result pools the folds of all repeats."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected two (n, d) arrays with the same d, got shapes {a.shape} and {b.shape}")
    check_range("repeats", repeats, lo=1)
    m = min(len(a), len(b))
    rng = np.random.default_rng(seed)
    accs = []
    for r in range(int(repeats)):
        ia = rng.permutation(len(a))[:m]
        ib = rng.permutation(len(b))[:m]
        X = np.vstack([a[ia], b[ib]])
        y = np.r_[np.zeros(m, np.int64), np.ones(m, np.int64)]
        accs.append(cross_validate(X, y, k, l2, seed=seed + 1 + r))
    acc = np.concatenate(accs)
    return CVResult(acc, m, len(accs[0]), int(repeats), a.shape[1])
