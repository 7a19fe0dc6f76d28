"""Logistic and softmax regression with L2 match scikit-learn's LogisticRegression at C = 1/(n·λ).

Ours: mean log-loss + (λ/2)‖w‖². sklearn: C·Σ log-loss + ½‖w‖², which divided by C·n is ours with
λ = 1/(C·n). Both leave the intercept unpenalized.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss as sk_log_loss
from training_worker.domain.config import FeatureConfig, OptimizerConfig, RegularizationConfig, TrainConfig
from training_worker.domain.data import Dataset
from training_worker.domain.training import fit


def _standardized(X: np.ndarray) -> np.ndarray:
    return (X - X.mean(axis=0)) / X.std(axis=0)


def _config(model: str, lam: float, epochs: int, lr: float) -> TrainConfig:
    return TrainConfig(
        model=model,  # type: ignore[arg-type]
        optimizer=OptimizerConfig("gd", lr=lr),
        epochs=epochs,
        regularization=RegularizationConfig("l2", lam),
        features=FeatureConfig(standardize=False),
    )


@pytest.mark.slow
@pytest.mark.parametrize("lam", [0.01, 0.1])
def test_logistic_l2_matches_sklearn(lam: float) -> None:
    raw = load_breast_cancer()
    X, y = _standardized(raw.data), raw.target.astype(np.float64)
    n = X.shape[0]
    data = Dataset(X, y, tuple(raw.feature_names), task="classification", class_names=("0", "1"))
    model = fit(data, None, _config("logistic", lam, epochs=6000, lr=0.5)).model
    ref = LogisticRegression(C=1.0 / (n * lam), tol=1e-12, max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(model.W[:, 0], ref.coef_[0], atol=1e-3)
    assert float(model.b[0]) == pytest.approx(ref.intercept_[0], abs=1e-3)
    ours = sk_log_loss(y, model.predict_proba(X))
    theirs = sk_log_loss(y, ref.predict_proba(X))
    assert ours == pytest.approx(theirs, abs=1e-3)


@pytest.mark.slow
def test_logistic_at_wrong_c_scaling_is_far_from_ours() -> None:
    raw = load_breast_cancer()
    X, y = _standardized(raw.data), raw.target.astype(np.float64)
    data = Dataset(X, y, tuple(raw.feature_names), task="classification", class_names=("0", "1"))
    lam = 0.1
    model = fit(data, None, _config("logistic", lam, epochs=1000, lr=0.5)).model
    wrong = LogisticRegression(C=1.0 / lam, tol=1e-10, max_iter=100_000).fit(X, y)
    assert float(np.max(np.abs(model.W[:, 0] - wrong.coef_[0]))) > 1e-2


@pytest.mark.slow
def test_softmax_l2_matches_sklearn_multinomial() -> None:
    raw = load_iris()
    X, y = _standardized(raw.data), raw.target.astype(np.float64)
    n, lam = X.shape[0], 0.01
    data = Dataset(X, y, tuple(raw.feature_names), task="classification", class_names=tuple(raw.target_names))
    model = fit(data, None, _config("softmax", lam, epochs=8000, lr=0.5)).model
    ref = LogisticRegression(C=1.0 / (n * lam), tol=1e-12, max_iter=100_000).fit(X, y)
    # The penalty makes the weights unique and centred over classes; the unpenalized biases are only
    # defined up to a common shift, so they are compared through the probabilities.
    np.testing.assert_allclose(model.W.T, ref.coef_, atol=1e-3)
    np.testing.assert_allclose(model.predict_proba(X), ref.predict_proba(X), atol=1e-3)
