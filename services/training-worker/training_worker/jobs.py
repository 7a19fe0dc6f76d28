"""The worker's entry point into the domain: a validated job spec in, a TrainingOutcome out.

`run_job` raises `Cancelled` (from training_worker.domain.errors) when should_stop returns True; it is
checked before every epoch of every fit, so a cancelled job stops within one epoch. Any other
`TrainingError` is a failure the user can act on (bad data, divergence, incompatible model and data).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from quartet_contracts.schemas.training import (
    HEAD_TASKS,
    LBFGS,
    SGD,
    Adam,
    ClosedForm,
    CosineSchedule,
    GradientDescent,
    LayerWeights,
    MLPModel,
    PolynomialModel,
    StepSchedule,
    Sweep,
    TrainingCompleted,
    TrainingJobSpec,
    TrainingProgressed,
    WeightSimilarity,
)
from quartet_contracts.schemas.training import History as HistoryMessage
from quartet_contracts.schemas.training import SweepCurve as SweepCurveMessage
from quartet_contracts.schemas.training import SweepPoint as SweepPointMessage

from training_worker.datasets import UploadReader, load_data
from training_worker.domain.config import (
    EarlyStoppingConfig,
    FeatureConfig,
    ModelKind,
    NetworkConfig,
    OptimizerConfig,
    RegularizationConfig,
    ScheduleConfig,
    SweepConfig,
    TrainConfig,
)
from training_worker.domain.metrics import Similarity
from training_worker.domain.runner import EpochReport, TrainingOutcome, train_once, train_sweep

__all__ = [
    "EpochReport",
    "TrainingOutcome",
    "completed_message",
    "progress_message",
    "run_job",
    "train_config",
]


def run_job(
    spec: TrainingJobSpec,
    *,
    on_epoch: Callable[[EpochReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    uploads: UploadReader | None = None,
) -> TrainingOutcome:
    """Load the spec's data and run its single fit or λ sweep; raises Cancelled if should_stop says so."""
    dataset = load_data(spec.data, spec.seed, uploads=uploads)
    config = train_config(spec)
    label = spec.model.kind
    if isinstance(spec.mode, Sweep):
        mode = spec.mode
        sweep = SweepConfig(mode.lambdas, mode.validation, mode.folds, mode.holdout_fraction, mode.warm_start)
        return train_sweep(
            dataset,
            config,
            sweep,
            spec.validation_split,
            label=label,
            on_epoch=on_epoch,
            should_stop=should_stop,
            clock=time.perf_counter,
        )
    return train_once(dataset, config, spec.validation_split, label=label, on_epoch=on_epoch, should_stop=should_stop)


def train_config(spec: TrainingJobSpec) -> TrainConfig:
    """The domain configuration of a job spec."""
    network = None
    model: ModelKind
    if isinstance(spec.model, MLPModel):
        model = HEAD_TASKS[spec.model.head]
        network = NetworkConfig(spec.model.hidden, spec.model.activation, spec.model.init)
    else:
        model = "linear" if spec.model.kind == "polynomial" else spec.model.kind
    degree = spec.model.degree if isinstance(spec.model, PolynomialModel) else 1
    opt = spec.optimizer
    if isinstance(opt, GradientDescent):
        optimizer = OptimizerConfig("gd", lr=opt.lr)
    elif isinstance(opt, SGD):
        optimizer = OptimizerConfig("sgd", lr=opt.lr, momentum=opt.momentum, batch_size=opt.batch_size)
    elif isinstance(opt, Adam):
        optimizer = OptimizerConfig(
            "adam", lr=opt.lr, beta1=opt.beta1, beta2=opt.beta2, eps=opt.eps, batch_size=opt.batch_size
        )
    elif isinstance(opt, LBFGS):
        optimizer = OptimizerConfig("lbfgs", lr=1.0)
    else:
        optimizer = OptimizerConfig("closed_form", lr=1.0)
    sched = spec.schedule
    if isinstance(sched, StepSchedule):
        schedule = ScheduleConfig("step", step_size=sched.step_size, gamma=sched.gamma)
    elif isinstance(sched, CosineSchedule):
        schedule = ScheduleConfig("cosine", min_lr=sched.min_lr)
    else:
        schedule = ScheduleConfig("constant")
    stopping = spec.early_stopping
    return TrainConfig(
        model=model,
        optimizer=optimizer,
        schedule=schedule,
        epochs=1 if isinstance(opt, ClosedForm) else spec.epochs,
        early_stopping=(
            EarlyStoppingConfig(stopping.patience, stopping.min_delta, stopping.restore_best)
            if stopping is not None and not isinstance(opt, ClosedForm)
            else None
        ),
        regularization=RegularizationConfig(spec.regularization.kind, spec.regularization.lam),
        features=FeatureConfig(degree=degree, standardize=spec.standardize),
        seed=spec.seed,
        network=network,
        init_std=0.0 if isinstance(spec.model, MLPModel) else spec.model.init_std,
        tol=None if isinstance(opt, ClosedForm) else spec.tol,
    )


def progress_message(job_id: str, report: EpochReport) -> TrainingProgressed:
    """The progress event for one epoch report."""
    return TrainingProgressed(
        job_id=job_id,
        epoch=report.epoch,
        epochs=report.epochs,
        progress=report.progress,
        train_loss=report.train_loss,
        val_loss=report.val_loss,
        weight_norm=report.weight_norm,
        phase=report.phase,
        sweep_step=report.sweep_step,
        sweep_steps=report.sweep_steps,
        lam=report.lam,
    )


def completed_message(
    job_id: str,
    outcome: TrainingOutcome,
    *,
    spec_hash: str | None = None,
    cached: bool = False,
    plots: Sequence[str] = (),
) -> TrainingCompleted:
    """The result event for an outcome."""
    history = outcome.result.history
    sim = outcome.similarity
    sweep = outcome.sweep
    curve = None
    if sweep is not None:
        curve = SweepCurveMessage(
            points=[
                SweepPointMessage(lam=p.lam, train_loss=p.train_loss, val_loss=p.val_loss, val_loss_std=p.val_loss_std)
                for p in sweep.points
            ],
            best_lam=sweep.best_lam,
            validation=sweep.validation,
            folds=sweep.folds,
            seconds_per_lambda=sweep.seconds_per_lam,
        )
    return TrainingCompleted(
        job_id=job_id,
        spec_hash=spec_hash,
        model=outcome.label,
        feature_names=list(outcome.model.features.names(outcome.train.feature_names)),
        class_names=list(outcome.train.class_names),
        weights=outcome.weights,
        bias=outcome.bias,
        lam=outcome.lam,
        metrics=outcome.metrics,
        reference_metrics=outcome.reference_metrics,
        history=HistoryMessage(
            train_loss=list(history.train_loss),
            val_loss=list(history.val_loss),
            weight_norm=list(history.weight_norm),
            # A model without hidden layers has one layer, whose norm weight_norm already holds.
            layer_norms=[list(norms) for norms in history.layer_norms] if outcome.model.hidden else [],
        ),
        similarity=_similarity(sim),
        layer_similarity=[_similarity(layer) for layer in outcome.layer_similarity],
        hidden_layers=[LayerWeights(weights=W, bias=b) for W, b in outcome.hidden_layers]
        if outcome.model.hidden
        else None,
        sweep=curve,
        epochs_run=outcome.result.epochs_run,
        stopped_early=outcome.result.stopped_early,
        cached=cached,
        plots=list(plots),
    )


def _similarity(sim: Similarity) -> WeightSimilarity:
    return WeightSimilarity(dot=sim.dot, cosine=sim.cosine, l1=sim.l1, l2=sim.l2)
