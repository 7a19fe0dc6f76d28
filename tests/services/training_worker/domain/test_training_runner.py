"""Single runs and sweeps: the article's overfitting demo, determinism, progress, cancellation, stopping."""

from __future__ import annotations

import numpy as np
import pytest
from training_worker.domain.config import (
    EarlyStoppingConfig,
    FeatureConfig,
    NetworkConfig,
    OptimizerConfig,
    RegularizationConfig,
    ScheduleConfig,
    SweepConfig,
    TrainConfig,
)
from training_worker.domain.data import linear_data, polynomial_1d, polynomial_values
from training_worker.domain.errors import Cancelled, Diverged, InvalidConfig
from training_worker.domain.metrics import mse, similarity
from training_worker.domain.optim import learning_rate
from training_worker.domain.runner import EpochReport, TrainingOutcome, train_once, train_sweep

COEFFICIENTS = (0.0, 2.0, 0.0, -2.5)
LAMBDAS = (0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


def _poly_config(optimizer: OptimizerConfig, epochs: int = 1) -> TrainConfig:
    return TrainConfig(
        optimizer=optimizer,
        epochs=epochs,
        regularization=RegularizationConfig("l2", 0.0),
        features=FeatureConfig(degree=15, standardize=True),
        seed=7,
    )


def _demo(seed: int = 7) -> TrainingOutcome:
    data = polynomial_1d(n_samples=20, noise=0.25, coefficients=COEFFICIENTS, seed=seed)
    config = _poly_config(OptimizerConfig("closed_form"))
    return train_sweep(data, config, SweepConfig(LAMBDAS, "kfold", 5), 0.2)


@pytest.mark.parametrize("seed", [7, 11, 23])
def test_degree_15_polynomial_generalizes_better_with_the_swept_lambda(seed: int) -> None:
    outcome = _demo(seed)
    assert outcome.sweep is not None
    assert outcome.lam > 0.0
    assert outcome.lam == outcome.sweep.best_lam
    assert outcome.metrics["val_mse"] < outcome.reference_metrics["val_mse"]
    # λ = 0 interpolates the training points; decay trades a little training error for a tamer curve.
    assert outcome.reference_metrics["train_mse"] < outcome.metrics["train_mse"]
    grid = np.linspace(-0.95, 0.95, 400)
    truth = polynomial_values(COEFFICIENTS, grid)
    decayed = mse(truth, outcome.model.predict(grid[:, None]))
    unregularized = mse(truth, outcome.reference.model.predict(grid[:, None]))
    assert decayed < 0.1 * unregularized
    assert np.linalg.norm(outcome.model.W) < np.linalg.norm(outcome.reference.model.W)
    zero = next(p for p in outcome.sweep.points if p.lam == 0.0)
    best = next(p for p in outcome.sweep.points if p.lam == outcome.lam)
    assert best.val_loss < zero.val_loss


def test_the_demo_also_holds_with_gradient_based_weight_decay() -> None:
    data = polynomial_1d(n_samples=20, noise=0.25, coefficients=COEFFICIENTS, seed=7)
    config = TrainConfig(
        optimizer=OptimizerConfig("adam", lr=0.05),
        schedule=ScheduleConfig("cosine", min_lr=5e-4),
        epochs=3000,
        regularization=RegularizationConfig("decoupled", 0.3),
        features=FeatureConfig(degree=15),
        seed=7,
    )
    outcome = train_once(data, config, 0.2)
    assert outcome.metrics["val_mse"] < 0.7 * outcome.reference_metrics["val_mse"]
    assert outcome.result.history.weight_norm[-1] < 0.5 * outcome.reference.history.weight_norm[-1]


def test_similarity_is_reported_against_the_unregularized_fit() -> None:
    data = linear_data(n_samples=200, n_features=4, seed=0)
    config = TrainConfig(
        optimizer=OptimizerConfig("gd", lr=0.1), epochs=50, regularization=RegularizationConfig("l2", 0.5)
    )
    outcome = train_once(data, config, 0.2)
    expected = similarity(outcome.model.W, outcome.reference.model.W)
    assert outcome.similarity == expected
    assert outcome.similarity.cosine is not None
    assert 0.9 < outcome.similarity.cosine < 1.0
    assert outcome.similarity.l2 > 0.0
    unregularized = train_once(data, config.with_lam(0.0), 0.2)
    assert unregularized.similarity.l2 == 0.0
    assert unregularized.reference is unregularized.result


def _sgd_spec_outcome(seed: int) -> TrainingOutcome:
    data = linear_data(n_samples=300, n_features=5, seed=seed)
    config = TrainConfig(
        optimizer=OptimizerConfig("sgd", lr=0.01, momentum=0.9, batch_size=16),
        epochs=20,
        regularization=RegularizationConfig("l2", 0.01),
        seed=seed,
    )
    return train_sweep(data, config, SweepConfig((0.0, 0.01, 0.1), "kfold", 3), 0.2)


def test_same_spec_twice_gives_identical_results() -> None:
    a, b = _sgd_spec_outcome(3), _sgd_spec_outcome(3)
    np.testing.assert_array_equal(a.model.W, b.model.W)
    np.testing.assert_array_equal(a.model.b, b.model.b)
    assert a.result.history == b.result.history
    assert a.sweep == b.sweep
    assert a.metrics == b.metrics
    c = _sgd_spec_outcome(4)
    assert not np.array_equal(a.model.W, c.model.W)


def test_sweep_progress_covers_the_whole_sweep() -> None:
    reports: list[EpochReport] = []
    data = linear_data(n_samples=100, n_features=3, seed=0)
    config = TrainConfig(
        optimizer=OptimizerConfig("gd", lr=0.1), epochs=10, regularization=RegularizationConfig("l2", 0.0)
    )
    train_sweep(data, config, SweepConfig((0.01, 0.1), "kfold", 3), 0.2, on_epoch=reports.append)
    progress = [r.progress for r in reports]
    assert progress == sorted(progress)
    assert 0.0 < progress[0] <= 0.05
    assert progress[-1] == pytest.approx(1.0)
    assert len(reports) == 10 * (2 * 3 + 2)
    assert {r.phase for r in reports} == {"sweep", "fit", "reference"}
    # Each fold runs the path from the largest λ (step 2 of the ascending grid) down.
    steps = [r.sweep_step for r in reports if r.phase == "sweep"]
    assert steps == [2] * 10 + [1] * 10 + [2] * 10 + [1] * 10 + [2] * 10 + [1] * 10
    assert all(r.val_loss is not None for r in reports)


def test_cancel_stops_within_one_epoch() -> None:
    reports: list[EpochReport] = []
    data = linear_data(n_samples=100, n_features=3, seed=0)
    config = TrainConfig(
        optimizer=OptimizerConfig("gd", lr=0.1), epochs=1000, regularization=RegularizationConfig("l2", 0.1)
    )
    with pytest.raises(Cancelled) as info:
        train_once(data, config, 0.2, on_epoch=reports.append, should_stop=lambda: len(reports) >= 5)
    assert len(reports) == 5
    assert info.value.epoch == 6


@pytest.mark.parametrize(
    ("degree", "network"), [(12, None), (1, NetworkConfig(hidden=(64, 64), activation="relu"))], ids=["poly", "mlp"]
)
def test_early_stopping_restores_the_best_epoch(degree: int, network: NetworkConfig | None) -> None:
    data = polynomial_1d(n_samples=40, noise=0.3, seed=2)
    config = TrainConfig(
        optimizer=OptimizerConfig("adam", lr=0.1),
        epochs=5000,
        early_stopping=EarlyStoppingConfig(patience=30),
        regularization=RegularizationConfig("none", 0.0),
        features=FeatureConfig(degree=degree),
        network=network,
    )
    outcome = train_once(data, config, 0.3)
    result = outcome.result
    assert result.stopped_early
    assert result.epochs_run < 5000
    history = result.history
    assert result.best_epoch == int(np.argmin(history.val_loss)) + 1
    assert result.epochs_run - result.best_epoch == 30
    assert outcome.val is not None
    assert outcome.metrics["val_mse"] == pytest.approx(min(history.val_loss), rel=1e-9)


def test_a_network_sweeps_lambda_with_every_layer_compared() -> None:
    data = polynomial_1d(n_samples=30, noise=0.3, seed=4)
    config = TrainConfig(
        optimizer=OptimizerConfig("adam", lr=0.02),
        epochs=150,
        regularization=RegularizationConfig("l2", 0.0),
        network=NetworkConfig(hidden=(24, 12), activation="tanh", init="xavier"),
        seed=2,
    )
    outcome = train_sweep(data, config, SweepConfig((0.0, 1e-3, 1e-1, 10.0), folds=3), 0.2)
    assert outcome.label == "mlp"
    assert outcome.sweep is not None and len(outcome.sweep.points) == 4
    assert outcome.lam == outcome.sweep.best_lam
    heaviest = max(outcome.sweep.points, key=lambda p: p.lam)
    assert heaviest.train_loss > min(p.train_loss for p in outcome.sweep.points)
    assert len(outcome.layer_similarity) == 3
    assert len(outcome.result.history.layer_norms[0]) == 3


def test_too_large_a_learning_rate_is_reported_as_divergence() -> None:
    data = linear_data(n_samples=100, n_features=3, seed=0)
    config = TrainConfig(
        optimizer=OptimizerConfig("gd", lr=50.0), epochs=500, regularization=RegularizationConfig("none", 0.0)
    )
    with pytest.raises(Diverged, match="lower the learning rate"):
        train_once(data, config, 0.2)


def test_invalid_combinations_are_domain_errors() -> None:
    data = linear_data(n_samples=30, n_features=2, seed=0)
    with pytest.raises(InvalidConfig, match="needs a regularization kind"):
        train_sweep(data, TrainConfig(), SweepConfig((0.1,)), 0.2)
    stopping = TrainConfig(early_stopping=EarlyStoppingConfig())
    with pytest.raises(InvalidConfig, match="early stopping needs validation data"):
        train_once(data, stopping, 0.0)
    closed = TrainConfig(
        optimizer=OptimizerConfig("closed_form"), regularization=RegularizationConfig("decoupled", 0.1)
    )
    with pytest.raises(InvalidConfig, match="closed-form solver minimizes the L2"):
        train_once(data, closed, 0.2)


def test_schedules() -> None:
    constant = ScheduleConfig("constant")
    step = ScheduleConfig("step", step_size=10, gamma=0.5)
    cosine = ScheduleConfig("cosine", min_lr=0.01)
    assert learning_rate(constant, 0.1, 99, 100) == 0.1
    assert learning_rate(step, 0.1, 9, 100) == 0.1
    assert learning_rate(step, 0.1, 25, 100) == pytest.approx(0.025)
    assert learning_rate(cosine, 0.1, 0, 100) == pytest.approx(0.1)
    assert learning_rate(cosine, 0.1, 99, 100) == pytest.approx(0.01)
    assert learning_rate(cosine, 0.1, 49, 99) == pytest.approx(0.055)


def test_classifier_metrics_and_shapes() -> None:
    from training_worker.domain.data import blobs

    data = blobs(n_samples=150, n_features=2, n_classes=3, cluster_std=0.8, seed=1)
    config = TrainConfig(
        model="softmax",
        optimizer=OptimizerConfig("gd", lr=0.5),
        epochs=200,
        regularization=RegularizationConfig("l2", 0.01),
    )
    outcome = train_once(data, config, 0.2)
    assert outcome.model.W.shape == (2, 3)
    assert isinstance(outcome.bias, list)
    assert len(outcome.weights) == 3
    assert set(outcome.metrics) == {
        f"{part}_{name}" for part in ("train", "val") for name in ("accuracy", "log_loss", "f1")
    }
    assert outcome.metrics["val_accuracy"] > 0.8
