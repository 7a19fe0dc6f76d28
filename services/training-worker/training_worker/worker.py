"""The training kind of job for the kernel's job service, and the adapter that runs one training job."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from quartet_contracts.schemas.training import Blobs as BlobsData
from quartet_contracts.schemas.training import (
    CancelTraining,
    GeneratorSource,
    InlineSource,
    LinearData,
    MLPModel,
    PolynomialModel,
    SklearnSource,
    TrainingCancelled,
    TrainingCompleted,
    TrainingFailed,
    TrainingJobSpec,
    TrainingProgressed,
    TrainingRequested,
    UploadSource,
    normalized_spec_hash,
    split_training_result,
)
from quartet_shared.jobkind import (
    JobKind,
    JobOutcome,
    JobRejected,
    JobTopics,
    OnProgress,
    Progress,
    ShouldStop,
    problem_body,
)

from training_worker.dataset_store import DatasetRecord
from training_worker.datasets import UploadReader, load_sklearn
from training_worker.domain.data import check_rows
from training_worker.domain.errors import (
    Cancelled,
    Diverged,
    IncompatibleData,
    InvalidDataset,
    TrainingError,
)
from training_worker.domain.runner import TrainingOutcome
from training_worker.jobs import EpochReport, completed_message, progress_message, run_job
from training_worker.settings import TrainingSettings

KIND = "training"
INTERNAL_ERROR = "InternalError"
# A job refused by the service's own limits, not by a domain error.
REJECTED = "Rejected"

DatasetLookup = Callable[[str], DatasetRecord | None]


@dataclass(frozen=True)
class EpochProgress(Progress):
    """The kernel's progress, carrying the domain's full report of the epoch."""

    report: EpochReport | None = None


@cache
def _sklearn_shape(name: str) -> tuple[int, int]:
    data = load_sklearn(name)
    return data.n_samples, data.n_features


@dataclass(frozen=True)
class DataSize:
    """Rows and feature columns a job's data source will have, and the spec field that sets the rows."""

    rows: int
    features: int
    field: str


def data_size(spec: TrainingJobSpec, datasets: DatasetLookup | None) -> DataSize:
    """The size of the spec's data before any of it is loaded; raises JobRejected for a missing upload."""
    data = spec.data
    if isinstance(data, GeneratorSource):
        gen = data.generator
        # Moons and circles are 2-D; the polynomial generator has one input.
        features = (
            gen.n_features if isinstance(gen, LinearData | BlobsData) else 1 if gen.name == "polynomial_1d" else 2
        )
        return DataSize(gen.n_samples, features, "data.generator.n_samples")
    if isinstance(data, SklearnSource):
        rows, features = _sklearn_shape(data.name)
        return DataSize(rows, features, "data.name")
    if isinstance(data, InlineSource):
        return DataSize(len(data.rows), len(data.rows[0]) - 1, "data.rows")
    return _upload_size(data, datasets)


def _upload_size(data: UploadSource, datasets: DatasetLookup | None) -> DataSize:
    record = datasets(data.dataset_id) if datasets is not None else None
    if record is None:
        raise JobRejected("data.dataset_id", f"no uploaded dataset {data.dataset_id!r}; upload it with POST /datasets")
    label, width = data.label_column, len(record.columns)
    if isinstance(label, int) and not -width <= label < width:
        raise JobRejected("data.label_column", f"index {label} is out of range for the dataset's {width} columns")
    if isinstance(label, str) and label not in record.columns:
        raise JobRejected(
            "data.label_column", f"{label!r} is not a column of the dataset ({', '.join(record.columns)})"
        )
    return DataSize(record.rows, width - 1, "data.dataset_id")


def check_budget(spec: TrainingJobSpec, settings: TrainingSettings, datasets: DatasetLookup | None = None) -> None:
    """Refuse a job whose data or work is over this service's limits, naming the field to change."""
    size = data_size(spec, datasets)
    try:
        check_rows(size.rows, settings.max_rows)
    except InvalidDataset as exc:
        raise JobRejected(size.field, str(exc)) from exc
    epochs = spec.planned_epochs()
    if epochs > settings.max_epochs:
        raise JobRejected(
            "epochs",
            f"the job runs up to {epochs:,} epochs over all its fits, over this service's limit of "
            f"{settings.max_epochs:,}",
        )
    if isinstance(spec.model, MLPModel):
        _check_network_work(spec.model, float(epochs) * size.rows, size.features, settings.max_work)
        return
    degree = spec.model.degree if isinstance(spec.model, PolynomialModel) else 1
    work = float(epochs) * size.rows * size.features * degree
    if work > settings.max_work:
        raise JobRejected(
            "epochs",
            f"the job asks for {work:.3g} epoch·row·feature steps, over this service's limit of "
            f"{settings.max_work:.3g}; use fewer epochs, rows or λ values",
        )


def _check_network_work(model: MLPModel, row_epochs: float, features: int, max_work: float) -> None:
    """Refuse a network whose multiply-adds over all epochs and rows exceed max_work, naming its layers."""
    # The class count of a softmax head is known only once the data is loaded; two is its least.
    outputs = 1 if model.head != "softmax" else 2
    sizes = [features, *model.hidden, outputs]
    per_row = sum(fan_in * fan_out for fan_in, fan_out in itertools.pairwise(sizes))
    work = row_epochs * per_row
    if work > max_work:
        raise JobRejected(
            "model.hidden",
            f"the job asks for {work:.3g} multiply-adds ({per_row:,} per row and epoch through the network's "
            f"layers), over this service's limit of {max_work:.3g}; use smaller or fewer hidden layers, fewer "
            "epochs, rows or λ values",
        )


def rejection(exc: TrainingError) -> JobRejected:
    """The job-service rejection for a domain error, naming the spec field to fix."""
    field: str | None
    if isinstance(exc, InvalidDataset):
        field = f"data.{exc.field}" if exc.field else "data"
    elif isinstance(exc, IncompatibleData):
        field = "model"
    elif isinstance(exc, Diverged):
        field = "optimizer.lr"
    else:
        field = exc.field
    return JobRejected(field, str(exc))


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def progress_event(job_id: str, progress: Progress) -> TrainingProgressed:
    """The progress event of one epoch (finite numbers only: a diverging run ends as a failure, not here)."""
    report = progress.report if isinstance(progress, EpochProgress) else None
    if report is None:
        return TrainingProgressed(
            job_id=job_id,
            epoch=max(1, progress.iteration),
            epochs=max(1, progress.total, progress.iteration),
            progress=min(1.0, max(0.0, progress.fraction)),
            train_loss=_finite(progress.best) or 0.0,
            weight_norm=0.0,
        )
    message = progress_message(job_id, report)
    return message.model_copy(
        update={"train_loss": _finite(report.train_loss) or 0.0, "val_loss": _finite(report.val_loss)}
    )


class TrainingKind(JobKind[TrainingRequested, TrainingProgressed, TrainingCompleted, TrainingFailed]):
    """The training job kind: topics, schemas, event builders and the budget check."""

    name = KIND
    spec_model = TrainingRequested
    progress_model = TrainingProgressed
    completed_model = TrainingCompleted
    failed_model = TrainingFailed
    cancelled_model = TrainingCancelled

    def __init__(
        self, settings: TrainingSettings, datasets: DatasetLookup | None = None, topics: JobTopics | None = None
    ) -> None:
        super().__init__(topics)
        self.settings = settings
        self.datasets = datasets

    def check_spec(self, spec: TrainingRequested) -> None:
        """Refuse a job over this service's limits (rows, epochs, work) or naming a missing upload."""
        check_budget(spec, self.settings, self.datasets)

    def spec_hash(self, spec: TrainingRequested) -> str:
        """The normalized spec hash."""
        return normalized_spec_hash(spec)

    def progress_event(self, job_id: str, progress: Progress) -> TrainingProgressed:
        """The progress event of one epoch."""
        return progress_event(job_id, progress)

    def progress_fraction(self, event: TrainingProgressed) -> float:
        """How far the job is."""
        return event.progress

    def failed_event(self, job_id: str, failure: JobRejected) -> TrainingFailed:
        """The failure event: the domain error's type when it has one, else a rejection or an internal error."""
        cause = failure.__cause__
        if isinstance(cause, TrainingError):
            error_type = type(cause).__name__
        else:
            error_type = INTERNAL_ERROR if failure.internal else REJECTED
        return TrainingFailed(
            job_id=job_id, error_type=error_type, detail=failure.message[:10_000], field=failure.field
        )

    def problem(self, event: TrainingFailed) -> dict[str, Any]:
        """422 for input the user can fix, 500 for our own failure."""
        if event.error_type == INTERNAL_ERROR:
            return problem_body(500, "Training failed", event.detail, event.field, error_type=event.error_type)
        title = f"Training failed: {event.error_type}"
        return problem_body(422, title, event.detail, event.field, error_type=event.error_type)

    def cancelled_event(self, job_id: str, last: Progress | None) -> TrainingCancelled:
        """The cancelled event, with the last epoch reached."""
        epoch = last.iteration if last is not None and last.iteration >= 1 else None
        return TrainingCancelled(job_id=job_id, epoch=epoch)

    def cancel_command(self, job_id: str) -> CancelTraining:
        """The cancel command."""
        return CancelTraining(job_id=job_id)

    def is_cached(self, event: TrainingCompleted) -> bool:
        """Whether the result came from the results cache."""
        return event.cached

    def split_result(self, result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Histories, weights and the sweep go to the artifact store; the rest stays in the event."""
        return split_training_result(result)


@dataclass(frozen=True)
class TrainJobRunner:
    """Runs one training job for the job service: per-epoch progress out, cancellation in, plots rendered."""

    uploads: UploadReader | None = None
    render_plots: bool = True

    def __call__(
        self, job_id: str, spec: TrainingJobSpec, on_progress: OnProgress, should_stop: ShouldStop
    ) -> JobOutcome[TrainingCompleted]:
        """Train; the outcome holds the TrainingCompleted event and its figures, or says it was cancelled."""
        last: list[EpochProgress] = []

        def on_epoch(report: EpochReport) -> None:
            progress = EpochProgress(report.epoch, report.epochs, report.progress, report.train_loss, report=report)
            last[:] = [progress]
            on_progress(progress)

        try:
            outcome = run_job(spec, on_epoch=on_epoch, should_stop=should_stop, uploads=self.uploads)
        except Cancelled:
            return JobOutcome(None, cancelled=True, last=last[-1] if last else None)
        except TrainingError as exc:
            raise rejection(exc) from exc
        plots = _render(outcome) if self.render_plots else {}
        completed = completed_message(job_id, outcome, spec_hash=normalized_spec_hash(spec), plots=sorted(plots))
        return JobOutcome(completed, plots, last=last[-1] if last else None)


__all__ = [
    "KIND",
    "DataSize",
    "EpochProgress",
    "TrainJobRunner",
    "TrainingKind",
    "check_budget",
    "data_size",
    "progress_event",
    "rejection",
]


def _render(outcome: TrainingOutcome) -> dict[str, bytes]:
    """The job's figures; matplotlib is imported here, not at start-up."""
    # Importing matplotlib builds its font cache, which a read-only image cannot keep: seconds on every start, tens
    # under load, during which the process does not answer SIGTERM. Only a job that draws needs it.
    from training_worker.plots import render_plots

    return render_plots(outcome)
