"""Objectives: the fused loss equals the reported loss, and the gradient matches finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from training_worker.domain.config import ModelKind
from training_worker.domain.models import Objective


def _problem(kind: ModelKind) -> tuple[Objective, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    n, d, k = 40, 5, 3
    objective = Objective.for_model(kind, k)
    X = rng.standard_normal((n, d))
    if kind == "linear":
        y = rng.standard_normal(n)
    elif kind == "logistic":
        y = rng.integers(0, 2, n).astype(np.float64)
    else:
        y = rng.integers(0, k, n).astype(np.float64)
    W = rng.standard_normal((d, objective.n_outputs))
    b = rng.standard_normal(objective.n_outputs)
    return objective, X, objective.targets(y), W, b


def _descended(objective: Objective, W: np.ndarray, b: np.ndarray, X: np.ndarray, T: np.ndarray) -> float:
    """The loss gradient descent minimizes: half the MSE for linear regression, the log-loss otherwise."""
    loss = objective.loss(W, b, X, T)
    return loss / 2 if objective.kind == "linear" else loss


@pytest.mark.parametrize("kind", ["linear", "logistic", "softmax"])
def test_loss_and_gradient(kind: ModelKind) -> None:
    objective, X, T, W, b = _problem(kind)
    loss, gW, gb = objective.loss_and_grad(W, b, X, T)
    assert loss == pytest.approx(objective.loss(W, b, X, T), rel=1e-12)
    h = 1e-6
    numeric_W = np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        step = np.zeros_like(W)
        step[idx] = h
        numeric_W[idx] = (_descended(objective, W + step, b, X, T) - _descended(objective, W - step, b, X, T)) / (2 * h)
    numeric_b = np.zeros_like(b)
    for k in range(b.shape[0]):
        step = np.zeros_like(b)
        step[k] = h
        numeric_b[k] = (_descended(objective, W, b + step, X, T) - _descended(objective, W, b - step, X, T)) / (2 * h)
    np.testing.assert_allclose(gW, numeric_W, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gb, numeric_b, rtol=1e-6, atol=1e-8)


def test_logistic_loss_is_stable_for_large_scores() -> None:
    objective = Objective.for_model("logistic", 2)
    X = np.array([[1.0], [-1.0]])
    T = objective.targets(np.array([1.0, 0.0]))
    W = np.array([[800.0]])
    loss, gW, _ = objective.loss_and_grad(W, np.zeros(1), X, T)
    assert loss == pytest.approx(0.0, abs=1e-300)
    assert np.all(np.isfinite(gW))
    wrong = objective.loss(-W, np.zeros(1), X, T)
    assert wrong == pytest.approx(800.0)
