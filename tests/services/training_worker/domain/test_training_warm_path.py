"""The warm-started path: down the λ grid, each fit from the previous solution, same answers in fewer epochs.

Fits stop at tol = 1e-8 (no weight or bias moved by more than tol × lr in the last full-batch GD step, i.e. the
penalized gradient is below 1e-8 entrywise). Every λ > 0 makes the objective strongly convex, so warm and cold
fits reach the same optimum; the tolerance stated is 1e-6 relative on the validation and training losses.
"""

from __future__ import annotations

import pytest
from training_worker.domain.config import ModelKind, OptimizerConfig, RegularizationConfig, SweepConfig, TrainConfig
from training_worker.domain.data import Dataset, blobs, linear_data
from training_worker.domain.runner import EpochReport, TrainingOutcome, train_sweep

LAMBDAS = (0.003, 0.01, 0.03, 0.1, 0.3)


def _sweep(data: Dataset, model: ModelKind, warm: bool) -> tuple[TrainingOutcome, int]:
    config = TrainConfig(
        model=model,
        optimizer=OptimizerConfig("gd", lr=0.5),
        epochs=20_000,
        regularization=RegularizationConfig("l2", 0.0),
        tol=1e-8,
    )
    reports: list[EpochReport] = []
    outcome = train_sweep(data, config, SweepConfig(LAMBDAS, "kfold", 3, warm_start=warm), 0.0, on_epoch=reports.append)
    return outcome, sum(1 for r in reports if r.phase == "sweep")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "data"),
    [
        ("linear", linear_data(n_samples=150, n_features=5, noise=1.0, seed=1)),
        ("logistic", blobs(n_samples=200, n_features=4, n_classes=2, cluster_std=3.0, seed=2)),
        ("softmax", blobs(n_samples=240, n_features=4, n_classes=3, cluster_std=3.0, seed=3)),
    ],
)
def test_warm_start_reaches_the_cold_solutions_in_fewer_epochs(model: ModelKind, data: Dataset) -> None:
    warm, warm_epochs = _sweep(data, model, warm=True)
    cold, cold_epochs = _sweep(data, model, warm=False)
    assert warm.sweep is not None and cold.sweep is not None
    for a, b in zip(warm.sweep.points, cold.sweep.points, strict=True):
        assert a.val_loss == pytest.approx(b.val_loss, rel=1e-6)
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-6)
    assert warm.sweep.best_lam == cold.sweep.best_lam
    assert warm_epochs < cold_epochs
    # No fit ran out of epochs: every one converged to the tolerance.
    assert cold_epochs < 20_000 * len(LAMBDAS) * 3
