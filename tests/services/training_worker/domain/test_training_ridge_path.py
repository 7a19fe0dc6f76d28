"""The ridge path from one decomposition: exact leave-one-out errors, every λ's weights, the sweep on top of it.

Leave-one-out here keeps α = n·λ fixed (n the full training set), as scikit-learn's RidgeCV does: refitting
without row i is ridge_closed_form on n − 1 rows at λ' = n·λ/(n − 1).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import RidgeCV
from training_worker.domain.config import FeatureConfig, OptimizerConfig, RegularizationConfig, SweepConfig, TrainConfig
from training_worker.domain.data import Dataset, linear_data
from training_worker.domain.ridge_path import RidgeDecomposition, ridge_loo_path
from training_worker.domain.runner import train_sweep
from training_worker.domain.training import ridge_closed_form

LAMBDAS = np.array([0.0, 1e-4, 1e-2, 0.1, 1.0, 10.0])


def _data(n: int = 40, d: int = 6, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 3.0, d) + rng.uniform(-2.0, 2.0, d)
    y = X @ rng.standard_normal(d) + 5.0 + rng.standard_normal(n)
    return X, y


def _brute_force_loo(X: np.ndarray, y: np.ndarray, lambdas: np.ndarray) -> np.ndarray:
    n = X.shape[0]
    errors = np.empty((n, lambdas.size))
    for i in range(n):
        keep = np.arange(n) != i
        for j, lam in enumerate(lambdas):
            w, b = ridge_closed_form(X[keep], y[keep], n * lam / (n - 1))
            errors[i, j] = y[i] - (X[i] @ w + b)
    return errors


def test_loo_errors_equal_brute_force_refits() -> None:
    X, y = _data()
    loo = ridge_loo_path(X, y, LAMBDAS)
    brute = _brute_force_loo(X, y, LAMBDAS)
    assert np.max(np.abs(loo.residuals - brute) / np.abs(brute)) < 1e-8


def test_loo_errors_survive_collinear_features() -> None:
    X, y = _data()
    X = np.column_stack([X, X[:, 0] * 2.0 + 1.0])
    lambdas = LAMBDAS[1:]
    loo = ridge_loo_path(X, y, lambdas)
    brute = _brute_force_loo(X, y, lambdas)
    assert np.max(np.abs(loo.residuals - brute) / np.abs(brute)) < 1e-8


def test_loo_errors_and_best_lambda_equal_ridgecv() -> None:
    X, y = _data(n=200, d=10)
    lambdas = np.logspace(-5, 1, 25)
    n = X.shape[0]
    loo = ridge_loo_path(X, y, lambdas)
    ref = RidgeCV(alphas=n * lambdas, gcv_mode="svd", store_cv_results=True).fit(X, y)
    assert np.max(np.abs(loo.residuals**2 - ref.cv_results_) / ref.cv_results_) < 1e-8
    assert float(lambdas[np.argmin(loo.mse)]) == pytest.approx(ref.alpha_ / n, rel=1e-12)


def test_every_lambdas_weights_equal_the_closed_form_fit() -> None:
    X, y = _data()
    W, b = RidgeDecomposition.of(X).weights(X, y, LAMBDAS)
    for j, lam in enumerate(LAMBDAS):
        w, bias = ridge_closed_form(X, y, float(lam))
        np.testing.assert_allclose(W[:, j], w, rtol=1e-9, atol=1e-9 * float(np.abs(w).max()))
        assert b[j] == pytest.approx(bias, rel=1e-9)


def test_loo_sweep_chooses_ridgecvs_lambda_and_reports_time_per_lambda() -> None:
    X, y = _data(n=150, d=8)
    data = Dataset(X, y, tuple(f"x{i}" for i in range(8)))
    config = TrainConfig(
        optimizer=OptimizerConfig("closed_form"),
        regularization=RegularizationConfig("l2", 0.0),
        features=FeatureConfig(standardize=False),
        epochs=1,
    )
    lambdas = tuple(float(v) for v in np.logspace(-4, 1, 12))
    ticks = iter([10.0, 16.0])
    outcome = train_sweep(data, config, SweepConfig(lambdas, "loo"), 0.0, clock=lambda: next(ticks))
    ref = RidgeCV(alphas=150 * np.array(lambdas), gcv_mode="svd").fit(X, y)
    assert outcome.sweep is not None
    assert outcome.sweep.best_lam == pytest.approx(ref.alpha_ / 150, rel=1e-12)
    assert outcome.sweep.folds == 150
    assert outcome.sweep.seconds_per_lam == pytest.approx(6.0 / 12)
    best = min(outcome.sweep.points, key=lambda p: p.val_loss)
    assert best.val_loss == pytest.approx(-ref.best_score_, rel=1e-9)


def test_kfold_ridge_path_equals_a_refit_per_fold() -> None:
    data = linear_data(n_samples=90, n_features=4, noise=1.0, seed=2)
    config = TrainConfig(optimizer=OptimizerConfig("closed_form"), regularization=RegularizationConfig("l2", 0.0))
    lambdas = (0.001, 0.1, 1.0)
    fast = train_sweep(data, config, SweepConfig(lambdas, "kfold", 3), 0.0)
    gd = TrainConfig(
        optimizer=OptimizerConfig("gd", lr=0.5), epochs=3000, regularization=RegularizationConfig("l2", 0.0), tol=1e-12
    )
    slow = train_sweep(data, gd, SweepConfig(lambdas, "kfold", 3, warm_start=False), 0.0)
    assert fast.sweep is not None and slow.sweep is not None
    for a, b in zip(fast.sweep.points, slow.sweep.points, strict=True):
        assert a.val_loss == pytest.approx(b.val_loss, rel=1e-8)
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-8)
