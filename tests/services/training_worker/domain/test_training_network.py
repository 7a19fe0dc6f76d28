"""Multilayer perceptrons: backpropagation against finite differences, initialisation, and how decay acts per layer."""

from __future__ import annotations

import numpy as np
import pytest
from training_worker.domain.config import (
    ActivationKind,
    ModelKind,
    NetworkConfig,
    OptimizerConfig,
    RegularizationConfig,
    RegularizationKind,
    TrainConfig,
)
from training_worker.domain.models import Objective, Targets
from training_worker.domain.network import Network, initial_layers
from training_worker.domain.training import Updater, descend


def _data(kind: ModelKind, n: int = 30, d: int = 4, k: int = 3, seed: int = 5) -> tuple[Objective, np.ndarray, Targets]:
    rng = np.random.default_rng(seed)
    objective = Objective.for_model(kind, k)
    X = rng.standard_normal((n, d))
    if kind == "linear":
        y = np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2
    elif kind == "logistic":
        y = (X[:, 0] * X[:, 1] > 0).astype(np.float64)
    else:
        y = np.digitize(X[:, 0] + X[:, 1] ** 2, [0.0, 1.5]).astype(np.float64)
    return objective, X, objective.targets(y)


def _network(objective: Objective, d: int, hidden: tuple[int, ...], activation: ActivationKind, seed: int) -> Network:
    rng = np.random.default_rng(seed)
    layers = initial_layers([d, *hidden, objective.n_outputs], "xavier", rng)
    # Non-zero biases, so the check covers them away from the symmetric start.
    layers = [(W, 0.1 * rng.standard_normal(b.shape)) for W, b in layers]
    return Network(objective, layers, activation)


def _descended(net: Network, X: np.ndarray, T: Targets) -> float:
    """The loss the gradient is of: half the MSE for a linear head, the log-loss otherwise."""
    loss = net.loss(X, T)
    return loss / 2 if net.objective.kind == "linear" else loss


def _numeric(net: Network, X: np.ndarray, T: Targets, param: np.ndarray, h: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(param)
    for idx in np.ndindex(param.shape):
        saved = param[idx]
        param[idx] = saved + h
        up = _descended(net, X, T)
        param[idx] = saved - h
        down = _descended(net, X, T)
        param[idx] = saved
        grad[idx] = (up - down) / (2 * h)
    return grad


def _relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    return float(np.linalg.norm(analytic - numeric) / max(np.linalg.norm(numeric), 1e-300))


@pytest.mark.parametrize("kind", ["linear", "logistic", "softmax"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("hidden", [(6,), (6, 5), (6, 5, 4)])
def test_backpropagation_matches_finite_differences_in_every_layer(
    kind: ModelKind, activation: ActivationKind, hidden: tuple[int, ...]
) -> None:
    objective, X, T = _data(kind)
    net = _network(objective, X.shape[1], hidden, activation, seed=len(hidden))
    loss, grads = net.loss_and_grad(X, T)
    assert loss == pytest.approx(net.loss(X, T), rel=1e-12)
    assert len(grads) == len(hidden) + 1
    for (W, b), (gW, gb) in zip(net.layers, grads, strict=True):
        assert gW.shape == W.shape and gb.shape == b.shape
        assert _relative_error(gW, _numeric(net, X, T, W)) <= 1e-6
        assert _relative_error(gb, _numeric(net, X, T, b)) <= 1e-6


def test_without_hidden_layers_the_network_is_the_plain_model() -> None:
    objective, X, T = _data("softmax")
    net = Network.initial(objective, X.shape[1], None, seed=0)
    W, b = net.layers[0]
    assert not W.any() and not b.any()
    W += 0.3
    loss, grads = net.loss_and_grad(X, T)
    plain_loss, gW, gb = objective.loss_and_grad(W, b, X, T)
    assert loss == plain_loss
    np.testing.assert_array_equal(grads[0][0], gW)
    np.testing.assert_array_equal(grads[0][1], gb)


def test_initialisation_is_deterministic_for_a_seed_and_scaled_by_fan_in() -> None:
    objective = Objective.for_model("linear", 1)
    he = NetworkConfig(hidden=(400, 300), activation="relu", init="he")
    first = Network.initial(objective, 500, he, seed=7)
    again = Network.initial(objective, 500, he, seed=7)
    other = Network.initial(objective, 500, he, seed=8)
    for (W, b), (W2, b2), (W3, _) in zip(first.layers, again.layers, other.layers, strict=True):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
        assert not np.array_equal(W, W3)
        assert not b.any()
    assert [W.shape for W, _ in first.layers] == [(500, 400), (400, 300), (300, 1)]
    assert np.std(first.layers[0][0]) == pytest.approx(np.sqrt(2 / 500), rel=0.02)
    xavier = Network.initial(objective, 500, NetworkConfig(hidden=(400,), activation="tanh", init="xavier"), seed=7)
    W = xavier.layers[0][0]
    bound = np.sqrt(6 / 900)
    assert np.abs(W).max() <= bound
    assert np.abs(W).max() > 0.99 * bound
    assert np.std(W) == pytest.approx(bound / np.sqrt(3), rel=0.02)
    assert not xavier.layers[0][1].any()


def test_glorot_bias_draws_the_biases_from_the_weights_range_as_sklearn() -> None:
    # scikit-learn's MLPs start every layer's weights and biases from U(±√(6/(fan_in + fan_out))) for ReLU.
    objective = Objective.for_model("softmax", 10)
    config = NetworkConfig(hidden=(400,), activation="relu", init="glorot_bias")
    net = Network.initial(objective, 500, config, seed=7)
    xavier = Network.initial(objective, 500, NetworkConfig(hidden=(400,), activation="relu", init="xavier"), seed=7)
    np.testing.assert_array_equal(net.layers[0][0], xavier.layers[0][0])
    for (W, b), (fan_in, fan_out) in zip(net.layers, [(500, 400), (400, 10)], strict=True):
        bound = np.sqrt(6 / (fan_in + fan_out))
        assert np.abs(W).max() <= bound and np.abs(b).max() <= bound
        assert np.abs(b).max() > 0.5 * bound
        assert np.std(b) == pytest.approx(bound / np.sqrt(3), rel=0.3)


@pytest.mark.parametrize("kind", ["l2", "decoupled", "l1"])
@pytest.mark.parametrize("optimizer", ["gd", "sgd", "adam"])
def test_decay_alone_leaves_every_bias_untouched(kind: RegularizationKind, optimizer: str) -> None:
    objective, X, _ = _data("softmax")
    net = _network(objective, X.shape[1], (6, 5, 4), "tanh", seed=3)
    start = net.copy()
    opt = OptimizerConfig(optimizer, lr=0.1, momentum=0.9 if optimizer == "sgd" else 0.0)  # type: ignore[arg-type]
    updaters = [Updater(opt, RegularizationConfig(kind, 0.5), W, b) for W, b in net.layers]
    for _ in range(3):
        for updater, (W, b) in zip(updaters, net.layers, strict=True):
            updater.step(np.zeros_like(W), np.zeros_like(b), 0.1)
    for (W, b), (W0, b0) in zip(net.layers, start, strict=True):
        np.testing.assert_array_equal(b, b0)
        assert np.linalg.norm(W) < np.linalg.norm(W0)


def _fit(kind: RegularizationKind, optimizer: OptimizerConfig, epochs: int = 40) -> list[np.ndarray]:
    objective, X, T = _data("logistic", n=60)
    config = TrainConfig(
        model="logistic",
        optimizer=optimizer,
        epochs=epochs,
        regularization=RegularizationConfig(kind, 0.05),
        network=NetworkConfig(hidden=(8, 6), activation="tanh", init="xavier"),
        seed=11,
    )
    layers, *_ = descend(X, T, None, None, objective, config)
    return [p for W, b in layers for p in (W, b)]


@pytest.mark.parametrize(
    "optimizer", [OptimizerConfig("gd", lr=0.3), OptimizerConfig("sgd", lr=0.1, momentum=0.0, batch_size=16)]
)
def test_without_adaptive_scaling_coupled_and_decoupled_decay_coincide(optimizer: OptimizerConfig) -> None:
    coupled, decoupled = _fit("l2", optimizer), _fit("decoupled", optimizer)
    undecayed = _fit("none", optimizer)
    for a, b in zip(coupled, decoupled, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert any(not np.allclose(a, c, rtol=1e-3) for a, c in zip(coupled, undecayed, strict=True))


def test_under_adam_coupled_and_decoupled_decay_differ() -> None:
    adam = OptimizerConfig("adam", lr=0.02)
    coupled, decoupled = _fit("l2", adam), _fit("decoupled", adam)
    weights = range(0, len(coupled), 2)
    for i in weights:
        gap = np.linalg.norm(coupled[i] - decoupled[i]) / np.linalg.norm(coupled[i])
        assert gap > 1e-2, f"layer {i // 2}: relative gap {gap:.2e}"
