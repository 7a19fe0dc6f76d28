"""Jobs over a dataset: a single regularized fit or a λ sweep, each compared with the unregularized fit.

Progress is counted in epochs over every fit the job makes (a closed-form fit counts as one epoch), so a
sweep reports 0..1 over the whole sweep. Cancellation raises `Cancelled` at the next epoch boundary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from training_worker.domain.config import ModelLabel, SweepConfig, TrainConfig, ValidationKind
from training_worker.domain.data import (
    Dataset,
    FloatArray,
    IndexArray,
    encode_target,
    holdout_split,
    kfold_splits,
    stratified_kfold_splits,
)
from training_worker.domain.errors import Cancelled, InvalidConfig
from training_worker.domain.features import FeaturePipeline
from training_worker.domain.fold_path import FoldLosses, FoldStack, fold_path
from training_worker.domain.metrics import Similarity, accuracy, f1, log_loss, mse, r2, similarity
from training_worker.domain.models import Objective, Targets
from training_worker.domain.network import Network
from training_worker.domain.ridge_path import RidgeDecomposition, ridge_loo_path
from training_worker.domain.training import EpochHook, FitResult, FittedModel, StopCheck, descend, fit

Phase = Literal["fit", "sweep", "reference"]


@dataclass(frozen=True)
class EpochReport:
    """One epoch of one fit, placed in the whole job: progress runs 0..1 over every fit of the job."""

    epoch: int
    epochs: int
    progress: float
    train_loss: float
    val_loss: float | None
    weight_norm: float
    lam: float
    phase: Phase
    sweep_step: int | None = None
    sweep_steps: int | None = None


ReportHook = Callable[[EpochReport], None]
Clock = Callable[[], float]


@dataclass(frozen=True)
class SweepPoint:
    """Validation result for one λ: mean training and validation loss over folds, and their spread."""

    lam: float
    train_loss: float
    val_loss: float
    val_loss_std: float


@dataclass(frozen=True)
class SweepResult:
    """The validation curve of a regularization path and the λ it selects."""

    points: tuple[SweepPoint, ...]
    best_lam: float
    validation: ValidationKind
    folds: int
    """Folds validated on: 1 for holdout, the training rows for leave-one-out."""
    seconds_per_lam: float | None = None
    """Wall time of the path (every fold) divided by the number of λ, when the caller gave a clock."""


@dataclass(frozen=True, eq=False)
class TrainingOutcome:
    """The final model, its unregularized counterpart, metrics, similarity and (for sweeps) the curve."""

    label: ModelLabel
    lam: float
    result: FitResult
    reference: FitResult
    metrics: dict[str, float]
    reference_metrics: dict[str, float]
    similarity: Similarity
    layer_similarity: tuple[Similarity, ...]
    sweep: SweepResult | None
    train: Dataset
    val: Dataset | None

    @property
    def model(self) -> FittedModel:
        """The final (regularized) model."""
        return self.result.model

    @property
    def weights(self) -> list[float] | list[list[float]]:
        """The weights as plain lists: a vector for one output, rows of class weights for softmax."""
        W = self.model.W
        return [float(v) for v in W[:, 0]] if W.shape[1] == 1 else [[float(v) for v in row] for row in W.T]

    @property
    def hidden_layers(self) -> list[tuple[list[list[float]], list[float]]]:
        """The hidden layers' weights (rows of each unit's input weights) and biases, as plain lists."""
        return [(W.T.tolist(), b.tolist()) for W, b in self.model.hidden]

    @property
    def bias(self) -> float | list[float]:
        """The bias: a number for one output, one per class for softmax."""
        b = self.model.b
        return float(b[0]) if b.shape[0] == 1 else [float(v) for v in b]


class _Progress:
    """Turns per-fit epoch callbacks into job-wide EpochReports."""

    def __init__(self, total: int, hook: ReportHook | None) -> None:
        self.total = max(1, total)
        self.done = 0
        self.hook = hook

    def fit_hook(
        self, units: int, lam: float, phase: Phase, step: int | None = None, steps: int | None = None
    ) -> EpochHook | None:
        hook = self.hook
        if hook is None:
            return None
        base = self.done
        epochs = units

        def report(epoch: int, train_loss: float, val_loss: float | None, norm: float) -> None:
            progress = min(1.0, (base + epoch) / self.total)
            hook(EpochReport(epoch, epochs, progress, train_loss, val_loss, norm, lam, phase, step, steps))

        return report

    def finished(self, units: int) -> None:
        self.done += units


def fit_units(config: TrainConfig) -> int:
    """Epochs one fit under config may take."""
    return 1 if config.optimizer.kind == "closed_form" else config.epochs


def split_dataset(dataset: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """The training part and (if fraction > 0) the validation part, chosen reproducibly from seed."""
    train_idx, val_idx = holdout_split(dataset.n_samples, fraction, np.random.default_rng((seed, 1)))
    return dataset.subset(train_idx), (dataset.subset(val_idx) if val_idx.size else None)


def train_once(
    dataset: Dataset,
    config: TrainConfig,
    validation_split: float,
    *,
    label: ModelLabel | None = None,
    on_epoch: ReportHook | None = None,
    should_stop: StopCheck | None = None,
) -> TrainingOutcome:
    """Fit config on the training part, and the same config with λ = 0 for comparison."""
    data = encode_target(dataset, config.model)
    train, val = split_dataset(data, validation_split, config.seed)
    lam = config.regularization.lam
    needs_reference = lam > 0.0 and config.regularization.kind != "none"
    units = fit_units(config)
    progress = _Progress(units * (2 if needs_reference else 1), on_epoch)
    result = fit(train, val, config, on_epoch=progress.fit_hook(units, lam, "fit"), should_stop=should_stop)
    progress.finished(units)
    reference = result
    if needs_reference:
        reference = fit(
            train,
            val,
            config.with_lam(0.0),
            on_epoch=progress.fit_hook(units, 0.0, "reference"),
            should_stop=should_stop,
        )
    return _outcome(label or model_kind_label(config), lam, result, reference, None, train, val)


def train_sweep(
    dataset: Dataset,
    config: TrainConfig,
    sweep: SweepConfig,
    validation_split: float,
    *,
    label: ModelLabel | None = None,
    on_epoch: ReportHook | None = None,
    should_stop: StopCheck | None = None,
    clock: Clock | None = None,
) -> TrainingOutcome:
    """Validate every λ of the grid on the training part, refit the best one, and compare with λ = 0.

    The closed-form ridge path decomposes each fold once and solves every λ from it (validation loo: exact
    leave-one-out on the whole training part); iterative fits run the grid from the largest λ down, each fit
    starting from the previous λ's solution on the same fold, with each fold's features computed once.
    """
    if config.regularization.kind == "none":
        raise InvalidConfig("a λ sweep needs a regularization kind (l2, decoupled or l1), not none")
    if not sweep.lambdas:
        raise InvalidConfig("a λ sweep needs at least one λ")
    closed = config.optimizer.kind == "closed_form"
    if sweep.validation == "loo" and not closed:
        raise InvalidConfig("leave-one-out validation is the closed-form ridge path's; use kfold or holdout")
    data = encode_target(dataset, config.model)
    train, val = split_dataset(data, validation_split, config.seed)
    splits = _sweep_splits(train, sweep, config.seed)
    units = fit_units(config)
    steps = len(sweep.lambdas)
    progress = _Progress(units * (steps * max(1, len(splits)) + 2), on_epoch)
    started = clock() if clock is not None else None
    path = _ridge_path if closed else _warm_path
    points = path(_Path(train, config, sweep, splits, progress, should_stop))
    seconds = (clock() - started) / steps if clock is not None and started is not None else None
    best = min(points, key=lambda p: (p.val_loss, -p.lam))
    result = fit(
        train,
        val,
        config.with_lam(best.lam),
        on_epoch=progress.fit_hook(units, best.lam, "fit"),
        should_stop=should_stop,
    )
    progress.finished(units)
    reference = result
    if best.lam > 0.0:
        reference = fit(
            train,
            val,
            config.with_lam(0.0),
            on_epoch=progress.fit_hook(units, 0.0, "reference"),
            should_stop=should_stop,
        )
    curve = SweepResult(tuple(points), best.lam, sweep.validation, len(splits) or train.n_samples, seconds)
    return _outcome(label or model_kind_label(config), best.lam, result, reference, curve, train, val)


Splits = list[tuple[IndexArray, IndexArray]]


def _sweep_splits(train: Dataset, sweep: SweepConfig, seed: int) -> Splits:
    """The (train, validation) row pairs of the sweep's validation; none for leave-one-out.

    k folds are stratified by class for classifiers, as scikit-learn's cross-validation of a classifier is.
    """
    rng = np.random.default_rng((seed, 2))
    if sweep.validation == "kfold":
        if train.task == "classification":
            return stratified_kfold_splits(train.y, sweep.folds, rng)
        return kfold_splits(train.n_samples, sweep.folds, rng)
    if sweep.validation == "holdout":
        return [holdout_split(train.n_samples, sweep.holdout_fraction, rng)]
    return []


@dataclass(frozen=True, eq=False)
class _Path:
    """What a regularization path runs over: the training part, its folds (none for leave-one-out), the grid."""

    train: Dataset
    config: TrainConfig
    sweep: SweepConfig
    splits: Splits
    progress: _Progress
    should_stop: StopCheck | None


def _ridge_path(run: _Path) -> list[SweepPoint]:
    """Every λ's validation losses from one decomposition per fold (or one leave-one-out path)."""
    train, config, splits, progress, should_stop = run.train, run.config, run.splits, run.progress, run.should_stop
    lambdas = run.sweep.lambdas
    lams = np.asarray(lambdas, dtype=np.float64)
    if should_stop is not None and should_stop():
        raise Cancelled(1)
    if not splits:
        features = FeaturePipeline.fit(train.X, config.features)
        loo = ridge_loo_path(features.transform(train.X), train.y, lams)
        train_losses, val_losses = loo.train_mse[None, :], loo.mse[None, :]
        spread = np.std(loo.residuals**2, axis=0)
    else:
        rows = [_ridge_fold(train, config, lams, fold, should_stop) for fold in splits]
        train_losses = np.array([r[0] for r in rows])
        val_losses = np.array([r[1] for r in rows])
        spread = np.std(val_losses, axis=0)
    points = []
    for step, lam in enumerate(lambdas, start=1):
        point = SweepPoint(
            lam,
            float(np.mean(train_losses[:, step - 1])),
            float(np.mean(val_losses[:, step - 1])),
            float(spread[step - 1]),
        )
        hook = progress.fit_hook(1, lam, "sweep", step, len(lambdas))
        if hook is not None:
            hook(1, point.train_loss, point.val_loss, 0.0)
        progress.finished(max(1, len(splits)))
        points.append(point)
    return points


def _ridge_fold(
    train: Dataset,
    config: TrainConfig,
    lams: FloatArray,
    fold: tuple[IndexArray, IndexArray],
    should_stop: StopCheck | None,
) -> tuple[FloatArray, FloatArray]:
    """Training and validation MSE per λ on one fold, all λ from one decomposition of its training rows."""
    if should_stop is not None and should_stop():
        raise Cancelled(1)
    inner, held = train.subset(fold[0]), train.subset(fold[1])
    features = FeaturePipeline.fit(inner.X, config.features)
    X, Xv = features.transform(inner.X), features.transform(held.X)
    W, b = RidgeDecomposition.of(X).weights(X, inner.y, lams)
    fit_mse: FloatArray = np.mean((X @ W + b - inner.y[:, None]) ** 2, axis=0)
    val_mse: FloatArray = np.mean((Xv @ W + b - held.y[:, None]) ** 2, axis=0)
    return fit_mse, val_mse


def _warm_path(run: _Path) -> list[SweepPoint]:
    """Iterative fits down the λ grid, each starting from the previous λ's solution on its fold if warm_start."""
    train, config, sweep, progress, should_stop = run.train, run.config, run.sweep, run.progress, run.should_stop
    if config.optimizer.kind == "lbfgs" and config.network is None:
        return _stacked_path(run)
    lambdas, splits = sweep.lambdas, run.splits
    order = sorted(range(len(lambdas)), key=lambda i: -lambdas[i])
    units = fit_units(config)
    activation = config.network.activation if config.network is not None else "relu"
    losses = np.zeros((2, len(splits), len(lambdas)))
    folds = [_FoldData.of(train, config, fold) for fold in splits]
    # L-BFGS fits run no early stopping, and their fold loss is taken once at the solution below: a validation
    # pass after every iteration would add a fifth to each and nothing reads it.
    per_epoch_validation = config.optimizer.kind != "lbfgs"
    for fold_index, fold in enumerate(folds):
        net: Network | None = None
        for i in order:
            hook = progress.fit_hook(units, lambdas[i], "sweep", i + 1, len(lambdas))
            layers, *_ = descend(
                fold.X,
                fold.T,
                fold.Xv if per_epoch_validation else None,
                fold.Tv if per_epoch_validation else None,
                fold.objective,
                config.with_lam(lambdas[i]),
                on_epoch=hook,
                should_stop=should_stop,
                start=net,
            )
            fitted = Network(fold.objective, layers, activation)
            progress.finished(units)
            losses[0, fold_index, i] = fitted.loss(fold.X, fold.T)
            losses[1, fold_index, i] = fitted.loss(fold.Xv, fold.Tv)
            if sweep.warm_start:
                net = fitted
    return _points(lambdas, losses)


def _stacked_path(run: _Path) -> list[SweepPoint]:
    """L-BFGS down the grid for a model without hidden layers: each λ's folds fitted as one problem."""
    lambdas, progress = run.sweep.lambdas, run.progress
    order = sorted(range(len(lambdas)), key=lambda i: -lambdas[i])
    units = fit_units(run.config)
    losses = np.zeros((2, len(run.splits), len(lambdas)))

    def on_lambda(position: int) -> FoldLosses:
        i = order[position]

        def report(fold: int, iterations: int, train_loss: float, val_loss: float, norm: float) -> None:
            losses[:, fold, i] = train_loss, val_loss
            hook = progress.fit_hook(units, lambdas[i], "sweep", i + 1, len(lambdas))
            if hook is not None:
                hook(iterations, train_loss, val_loss, norm)
            progress.finished(units)

        return report

    stack = FoldStack.of(run.train, run.config, run.splits)
    fold_path(stack, run.config, [lambdas[i] for i in order], run.sweep.warm_start, on_lambda, run.should_stop)
    return _points(lambdas, losses)


def _points(lambdas: tuple[float, ...], losses: FloatArray) -> list[SweepPoint]:
    """The sweep's points from the (train, validation) × fold × λ losses."""
    return [
        SweepPoint(
            lam, float(np.mean(losses[0, :, i])), float(np.mean(losses[1, :, i])), float(np.std(losses[1, :, i]))
        )
        for i, lam in enumerate(lambdas)
    ]


@dataclass(frozen=True, eq=False)
class _FoldData:
    """One fold's model features and targets, computed once for every λ of the path."""

    X: FloatArray
    T: Targets
    Xv: FloatArray
    Tv: Targets
    objective: Objective

    @classmethod
    def of(cls, train: Dataset, config: TrainConfig, fold: tuple[IndexArray, IndexArray]) -> _FoldData:
        """The features of fold's training and validation rows, the pipeline fitted on the training rows."""
        inner, held = train.subset(fold[0]), train.subset(fold[1])
        features = FeaturePipeline.fit(inner.X, config.features)
        objective = Objective.for_model(config.model, max(train.n_classes, 2))
        return cls(
            features.transform(inner.X),
            objective.targets(inner.y),
            features.transform(held.X),
            objective.targets(held.y),
            objective,
        )


def _loss(model: FittedModel, data: Dataset) -> float:
    """The reported loss of model on data: MSE, or log-loss for classifiers."""
    if model.kind == "linear":
        return mse(data.y, model.predict(data.X))
    return log_loss(data.y.astype(np.intp), model.predict_proba(data.X))


def evaluate(model: FittedModel, data: Dataset, prefix: str) -> dict[str, float]:
    """Metrics of model on data, keyed prefix_name: mse and r2, or accuracy, log_loss and f1."""
    if model.kind == "linear":
        pred = model.predict(data.X)
        return {f"{prefix}_mse": mse(data.y, pred), f"{prefix}_r2": r2(data.y, pred)}
    labels = data.y.astype(np.intp)
    proba = model.predict_proba(data.X)
    predicted = np.argmax(proba, axis=1).astype(np.intp)
    return {
        f"{prefix}_accuracy": accuracy(labels, predicted),
        f"{prefix}_log_loss": log_loss(labels, proba),
        f"{prefix}_f1": f1(labels, predicted, proba.shape[1]),
    }


def _metrics(model: FittedModel, train: Dataset, val: Dataset | None) -> dict[str, float]:
    metrics = evaluate(model, train, "train")
    if val is not None:
        metrics.update(evaluate(model, val, "val"))
    return metrics


def _outcome(
    label: ModelLabel,
    lam: float,
    result: FitResult,
    reference: FitResult,
    sweep: SweepResult | None,
    train: Dataset,
    val: Dataset | None,
) -> TrainingOutcome:
    return TrainingOutcome(
        label=label,
        lam=lam,
        result=result,
        reference=reference,
        metrics=_metrics(result.model, train, val),
        reference_metrics=_metrics(reference.model, train, val),
        similarity=similarity(result.model.weight_vector(), reference.model.weight_vector()),
        layer_similarity=tuple(
            similarity(W, W0) for (W, _), (W0, _) in zip(result.model.layers, reference.model.layers, strict=True)
        ),
        sweep=sweep,
        train=train,
        val=val,
    )


def model_kind_label(config: TrainConfig) -> ModelLabel:
    """The user-facing model name: mlp with hidden layers, polynomial for a linear model on expanded features."""
    if config.network is not None:
        return "mlp"
    return "polynomial" if config.model == "linear" and config.features.degree > 1 else config.model
