"""Coupled L2 against decoupled weight decay, the untouched bias, and the proximal L1 step.

Decoupled decay here is w ← (1 − η·λ)·w − η·d(g) (PyTorch's AdamW convention, decay scaled by the learning
rate η). Under plain SGD, d(g) = g and coupled L2 is w ← w − η(g + λw) = (1 − ηλ)·w − ηg: the same map,
so λ' = λ exactly (with the unscaled convention w ← w − λ'·w it would be λ' = η·λ). Under Adam, the coupled
λw passes through the moment estimates and is rescaled per coordinate, so the two differ.
"""

from __future__ import annotations

import numpy as np
import pytest
from training_worker.domain.config import (
    FeatureConfig,
    OptimizerConfig,
    RegularizationConfig,
    RegularizationKind,
    TrainConfig,
)
from training_worker.domain.data import Dataset, linear_data
from training_worker.domain.training import Updater, fit


def _data() -> Dataset:
    base = linear_data(n_samples=256, n_features=6, noise=0.5, seed=5)
    # Unequal feature scales make Adam's per-coordinate normalization matter.
    X = base.X * np.array([0.1, 0.5, 1.0, 2.0, 5.0, 10.0])
    return Dataset(X, base.y, base.feature_names)


def _fit(kind: RegularizationKind, lam: float, optimizer: OptimizerConfig, epochs: int = 200) -> np.ndarray:
    config = TrainConfig(
        optimizer=optimizer,
        epochs=epochs,
        regularization=RegularizationConfig(kind, lam),
        features=FeatureConfig(standardize=False),
        seed=3,
    )
    return fit(_data(), None, config).model.W[:, 0]


def test_adam_l2_and_decoupled_decay_give_different_weights() -> None:
    adam = OptimizerConfig("adam", lr=0.02, batch_size=32)
    coupled = _fit("l2", 0.1, adam)
    decoupled = _fit("decoupled", 0.1, adam)
    plain = _fit("none", 0.0, adam)
    assert np.linalg.norm(coupled - decoupled) / np.linalg.norm(decoupled) > 0.05
    assert np.linalg.norm(decoupled - plain) > 1e-3
    assert np.linalg.norm(coupled - plain) > 1e-3


@pytest.mark.parametrize("batch_size", [None, 16])
def test_plain_sgd_l2_and_decoupled_decay_coincide(batch_size: int | None) -> None:
    sgd = OptimizerConfig("sgd", lr=0.005, momentum=0.0, batch_size=batch_size)
    coupled = _fit("l2", 0.3, sgd, epochs=100)
    decoupled = _fit("decoupled", 0.3, sgd, epochs=100)
    plain = _fit("none", 0.0, sgd, epochs=100)
    np.testing.assert_allclose(decoupled, coupled, rtol=1e-10, atol=1e-12)
    assert np.linalg.norm(coupled - plain) > 1e-2


def test_one_sgd_step_is_the_same_map_for_coupled_and_decoupled() -> None:
    rng = np.random.default_rng(0)
    W0, b0 = rng.standard_normal((5, 1)), rng.standard_normal(1)
    gW, gb = rng.standard_normal((5, 1)), rng.standard_normal(1)
    lr, lam = 0.1, 0.7
    sgd = OptimizerConfig("sgd", lr=lr, momentum=0.0)
    coupled = Updater(sgd, RegularizationConfig("l2", lam), W0.copy(), b0.copy())
    decoupled = Updater(sgd, RegularizationConfig("decoupled", lam), W0.copy(), b0.copy())
    coupled.step(gW, gb, lr)
    decoupled.step(gW, gb, lr)
    np.testing.assert_allclose(decoupled.W, coupled.W, rtol=1e-14)
    np.testing.assert_allclose(coupled.W, (1 - lr * lam) * W0 - lr * gW, rtol=1e-14)
    np.testing.assert_array_equal(coupled.b, b0 - lr * gb)


def test_sgd_with_momentum_separates_coupled_and_decoupled() -> None:
    sgd = OptimizerConfig("sgd", lr=0.002, momentum=0.9, batch_size=16)
    coupled = _fit("l2", 0.3, sgd, epochs=30)
    decoupled = _fit("decoupled", 0.3, sgd, epochs=30)
    assert np.linalg.norm(coupled - decoupled) / np.linalg.norm(coupled) > 1e-3


@pytest.mark.parametrize(
    ("optimizer", "kind"),
    [
        (OptimizerConfig("gd", lr=0.1), "l2"),
        (OptimizerConfig("gd", lr=0.1), "decoupled"),
        (OptimizerConfig("sgd", lr=0.1, momentum=0.0), "decoupled"),
        (OptimizerConfig("adam", lr=0.1), "decoupled"),
    ],
)
def test_decay_alone_shrinks_weights_geometrically_and_leaves_the_bias(
    optimizer: OptimizerConfig, kind: RegularizationKind
) -> None:
    lr, lam, steps = 0.1, 0.5, 25
    W0 = np.array([[3.0], [-2.0], [0.5]])
    b0 = np.array([1.25])
    updater = Updater(optimizer, RegularizationConfig(kind, lam), W0.copy(), b0.copy())
    for _ in range(steps):
        updater.step(np.zeros_like(W0), np.zeros_like(b0), lr)
    np.testing.assert_array_equal(updater.b, b0)
    np.testing.assert_allclose(updater.W, W0 * (1 - lr * lam) ** steps, rtol=1e-12)


def test_fit_on_a_constant_target_decays_weights_but_keeps_the_bias_at_the_mean() -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 3))
    X -= X.mean(axis=0)
    data = Dataset(X, np.full(200, 2.5), ("a", "b", "c"))
    config = TrainConfig(
        optimizer=OptimizerConfig("gd", lr=0.5),
        epochs=300,
        regularization=RegularizationConfig("decoupled", 0.2),
        features=FeatureConfig(standardize=False),
    )
    model = fit(data, None, config).model
    assert float(model.b[0]) == pytest.approx(2.5, rel=1e-12)
    assert float(np.abs(model.W).max()) < 1e-12


def test_l1_proximal_step_zeroes_irrelevant_weights() -> None:
    rng = np.random.default_rng(2)
    X = rng.standard_normal((500, 8))
    y = 3.0 * X[:, 0] - 2.0 * X[:, 1] + 0.1 * rng.standard_normal(500)
    data = Dataset(X, y, tuple(f"x{i}" for i in range(8)))
    config = TrainConfig(
        optimizer=OptimizerConfig("gd", lr=0.1),
        epochs=500,
        regularization=RegularizationConfig("l1", 0.1),
        features=FeatureConfig(standardize=False),
    )
    w = fit(data, None, config).model.W[:, 0]
    assert np.count_nonzero(w[2:]) == 0
    assert abs(w[0]) > 2.5
    assert abs(w[1]) > 1.5
