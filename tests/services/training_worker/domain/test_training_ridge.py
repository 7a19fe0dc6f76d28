"""Gradient descent with L2 converges to the closed-form ridge optimum, and both match scikit-learn's Ridge.

Our objective is (1/2n)‖Xw + b − y‖² + (λ/2)‖w‖²; multiplied by 2n it is sklearn's ‖y − Xw − b‖² + α‖w‖²
with α = n·λ. sklearn fits the intercept by centring X and y, which is exactly leaving b unpenalized.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from training_worker.domain.config import FeatureConfig, OptimizerConfig, RegularizationConfig, TrainConfig
from training_worker.domain.data import Dataset, linear_data
from training_worker.domain.training import fit, ridge_closed_form


def _shifted_data(n: int = 400, d: int = 6, seed: int = 11) -> Dataset:
    """Features with non-zero means, so a wrong intercept treatment shows up in the weights."""
    base = linear_data(n_samples=n, n_features=d, noise=0.3, seed=seed)
    rng = np.random.default_rng(seed)
    X = base.X * rng.uniform(0.5, 2.0, d) + rng.uniform(-1.0, 1.0, d)
    return Dataset(X, base.y + 4.0, base.feature_names)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("lam", [1e-3, 0.05, 1.0])
def test_closed_form_matches_sklearn_ridge_with_alpha_n_lambda(lam: float) -> None:
    data = _shifted_data()
    n = data.n_samples
    w, b = ridge_closed_form(data.X, data.y, lam)
    ref = Ridge(alpha=n * lam, solver="cholesky", fit_intercept=True).fit(data.X, data.y)
    assert _rel(w, ref.coef_) < 1e-6
    assert abs(b - ref.intercept_) <= 1e-6 * abs(ref.intercept_)


def test_closed_form_stays_exact_when_feature_means_dwarf_their_spread() -> None:
    base = _shifted_data()
    X = base.X.copy()
    X[:, 0] += 1e6
    X[:, 3] = 7.0
    lam = 0.01
    w, b = ridge_closed_form(X, base.y, lam)
    ref = Ridge(alpha=base.n_samples * lam, solver="cholesky").fit(X, base.y)
    assert _rel(w, ref.coef_) < 1e-6
    assert abs(w[3]) < 1e-10
    assert b == pytest.approx(ref.intercept_, rel=1e-6)


def test_closed_form_is_not_sklearn_ridge_at_unscaled_alpha() -> None:
    data = _shifted_data()
    lam = 0.05
    w, _ = ridge_closed_form(data.X, data.y, lam)
    unscaled = Ridge(alpha=lam, solver="cholesky").fit(data.X, data.y)
    assert _rel(w, unscaled.coef_) > 1e-3


def test_closed_form_zero_lambda_is_least_squares() -> None:
    data = _shifted_data()
    w, b = ridge_closed_form(data.X, data.y, 0.0)
    design = np.column_stack([data.X, np.ones(data.n_samples)])
    exact = np.linalg.lstsq(design, data.y, rcond=None)[0]
    assert _rel(w, exact[:-1]) < 1e-9
    assert b == pytest.approx(exact[-1], rel=1e-9)


@pytest.mark.parametrize("lam", [0.05, 0.5])
def test_gradient_descent_with_l2_converges_to_the_ridge_optimum(lam: float) -> None:
    data = _shifted_data()
    config = TrainConfig(
        model="linear",
        optimizer=OptimizerConfig("gd", lr=0.2),
        epochs=4000,
        regularization=RegularizationConfig("l2", lam),
        features=FeatureConfig(standardize=False),
    )
    result = fit(data, None, config)
    w_gd, b_gd = result.model.W[:, 0], float(result.model.b[0])
    w_cf, b_cf = ridge_closed_form(data.X, data.y, lam)
    ref = Ridge(alpha=data.n_samples * lam, solver="cholesky").fit(data.X, data.y)
    assert _rel(w_gd, w_cf) < 1e-3
    assert _rel(w_gd, ref.coef_) < 1e-3
    assert b_gd == pytest.approx(b_cf, rel=1e-3)
    assert b_gd == pytest.approx(ref.intercept_, rel=1e-3)


def test_closed_form_fit_through_the_pipeline_matches_ridge_on_standardized_features() -> None:
    data = _shifted_data()
    lam = 0.1
    config = TrainConfig(optimizer=OptimizerConfig("closed_form"), regularization=RegularizationConfig("l2", lam))
    model = fit(data, None, config).model
    Z = (data.X - data.X.mean(axis=0)) / data.X.std(axis=0)
    ref = Ridge(alpha=data.n_samples * lam, solver="cholesky").fit(Z, data.y)
    assert _rel(model.W[:, 0], ref.coef_) < 1e-6
    np.testing.assert_allclose(model.predict(data.X), ref.predict(Z), rtol=1e-9)
