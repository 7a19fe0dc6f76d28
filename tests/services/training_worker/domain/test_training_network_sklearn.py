"""Multilayer perceptrons agree with scikit-learn's MLPRegressor and MLPClassifier started from the same weights.

scikit-learn minimizes loss + (α/2n)·Σ‖W‖² where we minimize loss + (λ/2)·Σ‖W‖², both leaving biases alone,
with the same losses (half the MSE; the mean log-loss): so λ = α/n, α = n·λ.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from training_worker.domain.config import (
    ActivationKind,
    ModelKind,
    NetworkConfig,
    OptimizerConfig,
    RegularizationConfig,
    TrainConfig,
)
from training_worker.domain.models import Objective
from training_worker.domain.network import Network
from training_worker.domain.training import descend

STEPS = 12
N = 80


def _problem(kind: ModelKind) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(21)
    X = rng.standard_normal((N, 5))
    if kind == "linear":
        return X, np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] + 0.1 * rng.standard_normal(N)
    if kind == "logistic":
        return X, (X[:, 0] ** 2 + X[:, 1] ** 2 > 1.4).astype(np.float64)
    return X, np.digitize(X[:, 0] + 0.5 * X[:, 1] ** 2, [-0.5, 0.8]).astype(np.float64)


def _sklearn(kind: ModelKind, hidden: tuple[int, ...], activation: ActivationKind, optimizer: OptimizerConfig) -> Any:
    common: dict[str, Any] = {
        "hidden_layer_sizes": hidden,
        "activation": activation,
        "batch_size": N,
        "shuffle": False,
        "tol": 0.0,
        "n_iter_no_change": 10 * STEPS,
        "warm_start": True,
        "learning_rate_init": optimizer.lr,
        "random_state": 0,
    }
    if optimizer.kind == "adam":
        common.update(solver="adam", beta_1=optimizer.beta1, beta_2=optimizer.beta2, epsilon=optimizer.eps)
    else:
        common.update(solver="sgd", momentum=optimizer.momentum, nesterovs_momentum=False, learning_rate="constant")
    return MLPRegressor(**common) if kind == "linear" else MLPClassifier(**common)


def _both(
    kind: ModelKind,
    hidden: tuple[int, ...],
    activation: ActivationKind,
    optimizer: OptimizerConfig,
    lam: float,
    alpha: float,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Our layers and scikit-learn's after STEPS full-batch steps from the same initial weights."""
    X, y = _problem(kind)
    theirs = _sklearn(kind, hidden, activation, optimizer)
    theirs.set_params(alpha=alpha, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X, y)  # builds its layers and label encoding; the weights are replaced below
        objective = Objective.for_model(kind, 3)
        config = TrainConfig(
            model=kind,
            optimizer=optimizer,
            epochs=STEPS,
            regularization=RegularizationConfig("l2", lam),
            network=NetworkConfig(hidden, activation, "xavier"),
            seed=4,
        )
        start = Network.initial(objective, X.shape[1], config.network, config.seed)
        start.layers = [(W, b + 0.05) for W, b in start.layers]
        theirs.coefs_ = [W.copy() for W, _ in start.layers]
        theirs.intercepts_ = [b.copy() for _, b in start.layers]
        theirs.set_params(max_iter=STEPS)
        theirs.fit(X, y)
    assert theirs.n_iter_ == STEPS
    layers, *_ = descend(X, objective.targets(y), None, None, objective, config, start=start)
    ours = [p for W, b in layers for p in (W, b)]
    reference = [p for W, b in zip(theirs.coefs_, theirs.intercepts_, strict=True) for p in (W, b)]
    return ours, reference


CASES = [
    ("linear", (16,), "relu", OptimizerConfig("gd", lr=0.05)),
    ("linear", (10, 8, 6), "tanh", OptimizerConfig("sgd", lr=0.05, momentum=0.9)),
    ("linear", (12, 6), "relu", OptimizerConfig("adam", lr=0.01, eps=1e-14)),
    ("logistic", (12,), "tanh", OptimizerConfig("gd", lr=0.5)),
    ("logistic", (10, 8), "relu", OptimizerConfig("adam", lr=0.01, eps=1e-14)),
    ("softmax", (12, 8), "tanh", OptimizerConfig("sgd", lr=0.2, momentum=0.5)),
    ("softmax", (9, 7, 5), "relu", OptimizerConfig("adam", lr=0.02, eps=1e-14)),
]


@pytest.mark.parametrize(("kind", "hidden", "activation", "optimizer"), CASES)
@pytest.mark.parametrize("lam", [0.0, 0.01])
def test_full_batch_steps_match_scikit_learn_with_alpha_n_lambda(
    kind: ModelKind, hidden: tuple[int, ...], activation: ActivationKind, optimizer: OptimizerConfig, lam: float
) -> None:
    ours, theirs = _both(kind, hidden, activation, optimizer, lam, alpha=N * lam)
    # Adam differs only in where ε enters (ε/√(1 − β₂ᵗ) for scikit-learn): small at ε = 1e-14, not nil where
    # a coordinate's gradient is near zero.
    tolerance = 1e-7 if optimizer.kind == "adam" else 1e-10
    for mine, reference in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(mine, reference, rtol=tolerance, atol=tolerance)


def test_alpha_equal_to_lambda_is_not_the_same_model() -> None:
    ours, theirs = _both("linear", (16,), "relu", OptimizerConfig("gd", lr=0.05), 0.01, alpha=0.01)
    assert max(float(np.abs(a - b).max()) for a, b in zip(ours, theirs, strict=True)) > 1e-4
