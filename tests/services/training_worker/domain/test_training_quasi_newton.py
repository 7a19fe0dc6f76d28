"""L-BFGS on the exact regularized objective: scikit-learn's solutions at C = 1/(n·λ), warm starts along a path.

sklearn's LogisticRegression (lbfgs) minimizes the mean log-loss + ‖w‖²/(2·C·n), ours the mean log-loss +
(λ/2)‖w‖², so the two are the same problem at C = 1/(n·λ); both leave the intercept unpenalized. At a tight
tolerance (gradient entries below 1e-10) the coefficients agree to 1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression
from training_worker.domain.config import (
    EarlyStoppingConfig,
    FeatureConfig,
    ModelKind,
    OptimizerConfig,
    RegularizationConfig,
    SweepConfig,
    TrainConfig,
)
from training_worker.domain.data import Dataset, blobs, linear_data, stratified_kfold_splits
from training_worker.domain.errors import Cancelled, InvalidConfig
from training_worker.domain.metrics import log_loss
from training_worker.domain.runner import EpochReport, train_sweep
from training_worker.domain.training import fit, ridge_closed_form


def _standardized(X: np.ndarray) -> np.ndarray:
    return (X - X.mean(axis=0)) / X.std(axis=0)


def _config(model: ModelKind, lam: float, tol: float = 1e-10) -> TrainConfig:
    return TrainConfig(
        model=model,
        optimizer=OptimizerConfig("lbfgs"),
        epochs=10_000,
        regularization=RegularizationConfig("l2", lam),
        features=FeatureConfig(standardize=False),
        tol=tol,
    )


@pytest.mark.slow
@pytest.mark.parametrize("lam", [1e-4, 0.01, 1.0])
def test_logistic_matches_sklearn_at_c_of_one_over_n_lambda(lam: float) -> None:
    raw = load_breast_cancer()
    X, y = _standardized(raw.data), raw.target.astype(np.float64)
    n = X.shape[0]
    data = Dataset(X, y, tuple(raw.feature_names), task="classification", class_names=("0", "1"))
    result = fit(data, None, _config("logistic", lam))
    ref = LogisticRegression(C=1.0 / (n * lam), tol=1e-10, max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(
        result.model.W[:, 0], ref.coef_[0], rtol=0.0, atol=1e-6 * max(1.0, np.abs(ref.coef_).max())
    )
    assert float(result.model.b[0]) == pytest.approx(float(ref.intercept_[0]), abs=1e-6)
    # Each iteration is one epoch of the history, and it stopped well before its budget.
    assert result.epochs_run == len(result.history.train_loss) < 10_000


def test_softmax_matches_sklearn_multinomial() -> None:
    raw = load_iris()
    X, y = _standardized(raw.data), raw.target.astype(np.float64)
    n, lam = X.shape[0], 0.01
    data = Dataset(X, y, tuple(raw.feature_names), task="classification", class_names=tuple(raw.target_names))
    model = fit(data, None, _config("softmax", lam)).model
    ref = LogisticRegression(C=1.0 / (n * lam), tol=1e-10, max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(model.W.T, ref.coef_, atol=1e-6)
    np.testing.assert_allclose(model.predict_proba(X), ref.predict_proba(X), atol=1e-7)


def test_linear_reaches_the_ridge_closed_form() -> None:
    data = linear_data(n_samples=200, n_features=6, noise=1.0, seed=4)
    model = fit(data, None, _config("linear", 0.1)).model
    w, b = ridge_closed_form(data.X, data.y, 0.1)
    np.testing.assert_allclose(model.W[:, 0], w, atol=1e-8)
    assert float(model.b[0]) == pytest.approx(b, abs=1e-8)


def test_the_bias_is_not_penalized() -> None:
    # Under an overwhelming penalty the weights vanish and the bias alone fits the class balance (30 % ones).
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((1000, 3)), (np.arange(1000) % 10 < 3).astype(np.float64)
    data = Dataset(X, y, ("a", "b", "c"), task="classification", class_names=("0", "1"))
    model = fit(data, None, _config("logistic", 1e4)).model
    assert float(np.max(np.abs(model.W))) < 1e-4
    assert float(model.b[0]) == pytest.approx(np.log(0.3 / 0.7), abs=1e-4)


def test_tol_bounds_the_penalized_gradient() -> None:
    data = blobs(n_samples=400, n_features=4, n_classes=2, cluster_std=3.0, seed=6)
    loose, tight = fit(data, None, _config("logistic", 1e-3, tol=1e-2)), fit(data, None, _config("logistic", 1e-3))
    assert loose.epochs_run < tight.epochs_run


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"regularization": RegularizationConfig("l1", 0.1)}, "lbfgs minimizes the L2-penalized objective, not l1"),
        ({"regularization": RegularizationConfig("decoupled", 0.1)}, "not decoupled"),
        ({"early_stopping": EarlyStoppingConfig()}, "early stopping needs gd, sgd or adam"),
    ],
)
def test_non_smooth_or_early_stopped_fits_are_refused(change: dict[str, object], message: str) -> None:
    data = blobs(n_samples=100, n_features=2, n_classes=2, seed=7)
    base = _config("logistic", 0.1)
    config = TrainConfig(**{**base.__dict__, **change})  # type: ignore[arg-type]
    val = data if config.early_stopping is not None else None
    with pytest.raises(InvalidConfig, match=message):
        fit(data, val, config)


def test_a_stop_request_cancels_between_iterations() -> None:
    data = blobs(n_samples=300, n_features=4, n_classes=2, cluster_std=3.0, seed=8)
    calls = iter(range(100))
    with pytest.raises(Cancelled):
        fit(data, None, _config("logistic", 1e-3), should_stop=lambda: next(calls) >= 2)


LAMBDAS = tuple(float(v) for v in np.logspace(-4, 0, 9))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "data"),
    [
        ("logistic", blobs(n_samples=600, n_features=5, n_classes=2, cluster_std=4.0, seed=9)),
        ("softmax", blobs(n_samples=600, n_features=5, n_classes=3, cluster_std=4.0, seed=10)),
    ],
)
def test_the_path_warm_starts_each_fit_from_the_previous_solution(model: ModelKind, data: Dataset) -> None:
    def sweep(warm: bool) -> tuple[list[float], int]:
        reports: list[EpochReport] = []
        outcome = train_sweep(
            data,
            _config(model, 0.0, tol=1e-9),
            SweepConfig(LAMBDAS, "kfold", 3, warm_start=warm),
            0.0,
            on_epoch=reports.append,
        )
        assert outcome.sweep is not None
        # One report per fold and λ, at the iteration count of that λ's fit.
        return [p.val_loss for p in outcome.sweep.points], sum(r.epoch for r in reports if r.phase == "sweep")

    (warm_losses, warm_iterations), (cold_losses, cold_iterations) = sweep(True), sweep(False)
    np.testing.assert_allclose(warm_losses, cold_losses, rtol=1e-7)
    # Started from the neighbouring λ's solution, the fits of the path need fewer iterations in all.
    assert warm_iterations < 0.8 * cold_iterations


@pytest.mark.slow
@pytest.mark.parametrize("standardize", [False, True])
def test_the_stacked_folds_reach_each_folds_own_solution(standardize: bool) -> None:
    # All folds of a λ are fitted as one problem; each fold's losses equal a separate fit on its own rows,
    # standardized on its own training rows.
    data = blobs(n_samples=500, n_features=4, n_classes=3, cluster_std=4.0, seed=11)
    config = TrainConfig(
        model="softmax",
        optimizer=OptimizerConfig("lbfgs"),
        epochs=10_000,
        regularization=RegularizationConfig("l2", 0.0),
        features=FeatureConfig(degree=2, standardize=standardize),
        tol=1e-10,
    )
    reports: list[EpochReport] = []
    lambdas = (1e-3, 0.1)
    outcome = train_sweep(data, config, SweepConfig(lambdas, "kfold", 3), 0.0, on_epoch=reports.append)
    assert outcome.sweep is not None
    splits = stratified_kfold_splits(data.y, 3, np.random.default_rng((config.seed, 2)))
    for point in outcome.sweep.points:
        separate = [_fold_losses(data, rows, held, config.with_lam(point.lam)) for rows, held in splits]
        assert point.train_loss == pytest.approx(np.mean([t for t, _ in separate]), rel=1e-6)
        assert point.val_loss == pytest.approx(np.mean([v for _, v in separate]), rel=1e-6)


def _fold_losses(data: Dataset, rows: np.ndarray, held: np.ndarray, config: TrainConfig) -> tuple[float, float]:
    model = fit(data.subset(rows), None, config).model
    train, val = (log_loss(data.y[r].astype(np.intp), model.predict_proba(data.X[r])) for r in (rows, held))
    return train, val


def test_a_stop_request_cancels_the_stacked_path() -> None:
    data = blobs(n_samples=300, n_features=4, n_classes=2, cluster_std=3.0, seed=12)
    calls = iter(range(1000))
    with pytest.raises(Cancelled):
        train_sweep(
            data, _config("logistic", 0.0), SweepConfig(LAMBDAS, "kfold", 3), 0.0, should_stop=lambda: next(calls) >= 3
        )
