"""The worker adapter without servers: budgets, rejections, progress events, cancellation and outcomes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from quartet_contracts.envelope import Envelope
from quartet_contracts.schemas.claimcheck import PARTS_ARTIFACT, ResultRef
from quartet_contracts.schemas.training import (
    TrainingCompleted,
    TrainingJobSpec,
    TrainingRequested,
    normalized_spec_hash,
)
from quartet_shared.jobkind import failure_of
from quartet_shared.jobservice import (
    JobOutcome,
    JobRejected,
    JobWorker,
    OnProgress,
    Progress,
    ShouldStop,
    WorkerPorts,
    job_router,
)
from quartet_shared.settings import KernelSettings
from quartet_shared.testing.fakes import FakePorts, FakeResults, HandlerCall
from training_worker.dataset_store import DatasetRecord
from training_worker.domain.errors import Diverged, IncompatibleData, InvalidConfig, InvalidDataset
from training_worker.jobs import EpochReport
from training_worker.settings import TrainingSettings
from training_worker.worker import (
    EpochProgress,
    TrainingKind,
    TrainJobRunner,
    check_budget,
    data_size,
    progress_event,
    rejection,
)

from tests.support.fake_jobs import run_and_project

LIMITS = TrainingSettings(max_rows=1000, max_epochs=10_000, max_work=1e8)
KIND = TrainingKind(LIMITS)
UPLOADED = DatasetRecord(
    id="abc", name="houses", size_bytes=100, rows=500, columns=["area", "price", "age"], created_at=datetime.now(UTC)
)


def spec(**raw: Any) -> TrainingJobSpec:
    return TrainingJobSpec.model_validate(raw)


def lookup(ident: str) -> DatasetRecord | None:
    return UPLOADED if ident == UPLOADED.id else None


def rejected(raw: dict[str, Any]) -> JobRejected:
    with pytest.raises(JobRejected) as caught:
        check_budget(spec(**raw), LIMITS, lookup)
    return caught.value


def test_data_size_of_every_source() -> None:
    assert data_size(spec(), None).rows == 500
    poly = data_size(spec(model={"kind": "polynomial", "degree": 15}), None)
    assert (poly.rows, poly.features, poly.field) == (20, 1, "data.generator.n_samples")
    moons = data_size(
        spec(model={"kind": "logistic"}, data={"kind": "generator", "generator": {"name": "moons"}}), None
    )
    assert (moons.rows, moons.features) == (200, 2)
    assert data_size(spec(data={"kind": "sklearn", "name": "diabetes"}), None).features == 10
    inline = data_size(spec(data={"kind": "inline", "rows": [[1, 2, 3]] * 4}), None)
    assert (inline.rows, inline.features, inline.field) == (4, 2, "data.rows")
    upload = data_size(spec(data={"kind": "upload", "dataset_id": "abc"}), lookup)
    assert (upload.rows, upload.features, upload.field) == (500, 2, "data.dataset_id")


def test_budgets_name_the_field_to_change() -> None:
    check_budget(spec(epochs=100), LIMITS, lookup)
    rows = rejected({"data": {"kind": "generator", "generator": {"name": "linear", "n_samples": 2000}}})
    assert rows.field == "data.generator.n_samples"
    assert "2,000 rows" in rows.message
    epochs = rejected({"epochs": 6000})
    assert epochs.field == "epochs"
    assert "12,000 epochs" in epochs.message
    sweep = rejected({"epochs": 300, "mode": {"kind": "sweep"}})
    assert sweep.field == "epochs"
    work = rejected({"epochs": 4000, "data": {"kind": "generator", "generator": {"name": "linear", "n_features": 50}}})
    assert work.field == "epochs"
    assert "epoch·row·feature" in work.message


def test_a_networks_budget_counts_its_multiply_adds() -> None:
    small = {"model": {"kind": "mlp", "hidden": [16, 8]}, "epochs": 100}
    check_budget(spec(**small), LIMITS, lookup)
    # 500 rows × 2 fits × 1,000 epochs × (5·64 + 64·64 + 64) multiply-adds per row: 4.48e9, over 1e8.
    big = rejected({"model": {"kind": "mlp", "hidden": [64, 64]}, "epochs": 1000})
    assert big.field == "model.hidden"
    assert "4.48e+09 multiply-adds" in big.message
    assert "4,480 per row" in big.message
    # The same epochs and rows on a linear model are within the budget: the network's layers are what cost.
    check_budget(spec(epochs=1000), LIMITS, lookup)


def test_uploaded_datasets_must_exist_and_have_the_label() -> None:
    check_budget(spec(data={"kind": "upload", "dataset_id": "abc", "label_column": "price"}), LIMITS, lookup)
    check_budget(spec(data={"kind": "upload", "dataset_id": "abc", "label_column": -3}), LIMITS, lookup)
    assert rejected({"data": {"kind": "upload", "dataset_id": "nope"}}).field == "data.dataset_id"
    assert rejected({"data": {"kind": "upload", "dataset_id": "abc", "label_column": "x"}}).field == "data.label_column"
    assert rejected({"data": {"kind": "upload", "dataset_id": "abc", "label_column": 3}}).field == "data.label_column"


def test_domain_errors_become_rejections_naming_the_field() -> None:
    assert rejection(InvalidDataset("bad", field="label_column")).field == "data.label_column"
    assert rejection(InvalidDataset("bad")).field == "data"
    assert rejection(IncompatibleData("3 classes")).field == "model"
    assert rejection(Diverged("boom")).field == "optimizer.lr"
    assert rejection(InvalidConfig("folds")).field is None


def test_failed_events_and_their_problems() -> None:
    try:
        raise rejection(Diverged("training diverged")) from Diverged("training diverged")
    except JobRejected as exc:
        event = KIND.failed_event("j1", exc)
    assert (event.error_type, event.field, event.detail) == ("Diverged", "optimizer.lr", "training diverged")
    problem = KIND.problem(event)
    assert problem["status"] == 422
    assert problem["field"] == "optimizer.lr"
    assert problem["errors"] == [{"field": "optimizer.lr", "message": "training diverged"}]
    internal = KIND.failed_event("j2", failure_of(RuntimeError("disk full")))
    assert internal.error_type == "InternalError"
    assert internal.detail == "RuntimeError: disk full"
    assert KIND.problem(internal)["status"] == 500
    assert "field" not in KIND.problem(internal)
    over = KIND.failed_event("j3", rejected({"epochs": 20_000}))
    assert over.error_type == "Rejected"
    assert KIND.problem(over)["status"] == 422


def test_progress_events_carry_the_epoch_report_with_finite_numbers() -> None:
    report = EpochReport(3, 10, 0.15, 0.5, float("inf"), 2.0, 0.1, "sweep", 2, 9)
    event = progress_event("j1", EpochProgress(3, 10, 0.15, 0.5, report=report))
    assert (event.epoch, event.epochs, event.phase, event.sweep_step, event.lam) == (3, 10, "sweep", 2, 0.1)
    assert event.val_loss is None
    bare = progress_event("j1", Progress(0, 0, 1.5, None))
    assert (bare.epoch, bare.epochs, bare.progress) == (1, 1, 1.0)


def test_the_runner_trains_reports_every_epoch_and_renders_plots() -> None:
    job = spec(model={"kind": "polynomial", "degree": 5}, epochs=50, optimizer={"kind": "gd", "lr": 0.1})
    seen: list[Progress] = []
    outcome = TrainJobRunner(render_plots=True)("j1", job, seen.append, lambda: False)
    assert isinstance(outcome.completed, TrainingCompleted)
    assert outcome.completed.spec_hash == normalized_spec_hash(job)
    assert sorted(outcome.plots) == outcome.completed.plots == ["fit", "loss", "loss_comparison", "weight_norm"]
    assert len(seen) == 100  # the regularized fit and the λ = 0 reference, 50 epochs each
    assert outcome.last is seen[-1]
    assert seen[-1].fraction == 1.0


def test_the_runner_stops_at_the_next_epoch_when_asked() -> None:
    seen: list[Progress] = []

    def stop() -> bool:
        return len(seen) >= 7

    outcome = TrainJobRunner()("j1", spec(epochs=1000), seen.append, stop)
    assert outcome.cancelled
    assert outcome.completed is None
    assert len(seen) == 7
    assert outcome.last is not None and outcome.last.iteration == 7
    kind = TrainingKind(LIMITS)
    assert kind.cancelled_event("j1", outcome.last).model_dump()["epoch"] == 7


def test_the_runner_rejects_what_the_domain_refuses() -> None:
    data = {"kind": "inline", "rows": [[1, 0], [2, 1], [3, 2], [4, 0]]}
    with pytest.raises(JobRejected) as caught:
        TrainJobRunner()("j1", spec(model={"kind": "logistic"}, data=data), lambda _p: None, lambda: False)
    assert caught.value.field == "model"
    assert isinstance(caught.value.__cause__, IncompatibleData)

    def no_uploads(ident: str) -> bytes:
        raise KeyError(ident)

    with pytest.raises(JobRejected) as missing:
        TrainJobRunner(uploads=no_uploads)(
            "j2", spec(data={"kind": "upload", "dataset_id": "gone"}), lambda _p: None, lambda: False
        )
    assert missing.value.field == "data"


@pytest.mark.slow
def test_processes_that_train_use_one_math_thread() -> None:
    # In a child process: the limit is process-wide and meant to last, so it must not leak into the tests.
    code = (
        "from threadpoolctl import threadpool_info, threadpool_limits\n"
        "import numpy, sklearn\n"
        "from training_worker.main import limit_math_threads\n"
        "from training_worker.settings import TrainingSettings\n"
        "threadpool_limits(limits=2)\n"
        "seen = []\n"
        "for role in ('api', 'all', 'worker'):\n"
        "    limit_math_threads(TrainingSettings(), role)\n"
        "    seen.append(sorted({i['num_threads'] for i in threadpool_info()}))\n"
        "    threadpool_limits(limits=2)\n"
        "print(seen)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert json.loads(done.stdout) == [[2], [1], [1]]


def _handle(worker: JobWorker, job: TrainingJobSpec, job_id: str) -> list[Envelope]:
    """Hand one job to the worker as its runner would, collecting what it emits, then commit."""
    request = TrainingRequested.model_validate(job.model_dump())
    call = HandlerCall(Envelope.of(request, source="/tests", id=job_id))
    worker.handle(request, call.context)
    call.commit()
    return [sent.envelope for sent in call.emitted]


def test_a_training_job_runs_and_is_projected_and_one_over_budget_fails_with_a_422_problem() -> None:
    """The training kind through the kernel's worker and projector, on fakes."""
    job = spec(model={"kind": "polynomial", "degree": 3}, epochs=20, optimizer={"kind": "gd", "lr": 0.1})
    request = TrainingRequested.model_validate(job.model_dump())
    ports, outcome = run_and_project(KIND, TrainJobRunner(render_plots=False), request, "train-1")
    record = ports.store.require("train-1")
    assert (outcome, record.status, record.progress) == ("quartet.training.TrainingCompleted.v1", "succeeded", 1.0)
    result = ports.store.result("train-1")
    assert result is not None and result["job_id"] == "train-1" and result["cached"] is False
    epochs = [e.data["epoch"] for e in ports.producer.to(KIND.topics.progress)]
    assert epochs and epochs == sorted(epochs) and epochs[-1] == 20

    over = TrainingRequested.model_validate(spec(epochs=20_000).model_dump())
    ports, outcome = run_and_project(KIND, TrainJobRunner(render_plots=False), over, "train-2")
    failed = ports.store.require("train-2")
    assert (outcome, failed.status) == ("quartet.training.TrainingFailed.v1", "failed")
    assert failed.problem is not None
    assert (failed.problem["status"], failed.problem["field"]) == (422, "epochs")


def test_a_cached_result_is_reused_only_while_its_figures_exist() -> None:
    fakes = FakePorts()
    ports = fakes.worker_ports()
    runs: list[str] = []
    inner = TrainJobRunner()

    def run(job_id: str, job: Any, on_progress: OnProgress, should_stop: ShouldStop) -> JobOutcome:
        runs.append(job_id)
        return inner(job_id, job, on_progress, should_stop)

    worker = JobWorker(TrainingKind(LIMITS), KernelSettings(), run, ports)
    job = spec(model={"kind": "polynomial", "degree": 3}, optimizer={"kind": "closed_form"})
    (first,) = _handle(worker, job, "job-1")
    assert first.data["cached"] is False
    (second,) = _handle(worker, job, "job-2")
    assert (second.data["cached"], second.data["plots"], runs) == (True, first.data["plots"], ["job-1"])
    assert ports.artifacts.get("job-2", "fit") is not None

    # The result outlives its figures (a cache kept while the database was replaced): train afresh.
    fakes.artifacts.files.clear()
    (third,) = _handle(worker, job, "job-3")
    assert third.data["cached"] is False
    assert runs == ["job-1", "job-3"]
    assert ports.artifacts.names("job-3") == sorted([*first.data["plots"], PARTS_ARTIFACT])

    # The figures kept but the stored parts of the result gone: the summary alone is not the result either.
    other = spec(model={"kind": "polynomial", "degree": 2}, optimizer={"kind": "closed_form"})
    (fifth,) = _handle(worker, other, "job-5")
    ref = ResultRef.model_validate(fifth.data["result_ref"])
    assert ports.artifacts.get_parts("job-5", ref) is not None
    for key in [key for key in fakes.artifacts.files if key[1] == PARTS_ARTIFACT]:
        del fakes.artifacts.files[key]
    (sixth,) = _handle(worker, other, "job-6")
    assert sixth.data["cached"] is False
    assert runs == ["job-1", "job-3", "job-5", "job-6"]
    assert ports.artifacts.get_parts("job-6", ref) is not None


def test_a_cached_result_of_the_old_inline_shape_is_claim_checked_before_it_is_emitted() -> None:
    """A results cache written before the claim-check holds whole results; a job served from one still emits a
    summary and a reference, its parts stored under the new job."""
    ports = FakePorts().worker_ports()
    runs: list[str] = []

    def run(job_id: str, job: Any, on_progress: OnProgress, should_stop: ShouldStop) -> JobOutcome:
        runs.append(job_id)
        return TrainJobRunner(render_plots=False)(job_id, job, on_progress, should_stop)

    kind = TrainingKind(LIMITS)
    worker = JobWorker(kind, KernelSettings(), run, ports)
    job = spec(model={"kind": "polynomial", "degree": 3}, optimizer={"kind": "closed_form"})
    (computed,) = _handle(worker, job, "old-1")
    stored = ports.artifacts.get_parts("old-1", ResultRef.model_validate(computed.data["result_ref"]))
    assert stored is not None
    inline = {**computed.data, **stored, "result_ref": None}
    # A results cache of its own, holding the whole result as it was cached before.
    before = WorkerPorts(ports.artifacts, FakeResults())
    before.results.put(kind.spec_hash(job), "old-1", inline)
    (served,) = _handle(JobWorker(kind, KernelSettings(), run, before), job, "old-2")
    assert runs == ["old-1"]
    assert served.data["cached"] is True
    assert served.data["history"] is None and served.data["weights"] is None
    ref = ResultRef.model_validate(served.data["result_ref"])
    assert ports.artifacts.get_parts("old-2", ref) == stored


def test_openapi_documents_the_jobs_status_and_result_models() -> None:
    app = FastAPI()
    app.include_router(job_router(KIND))
    paths = app.openapi()["paths"]
    for path, model in (("/jobs/{job_id}", "JobPublic"), ("/jobs/{job_id}/result", "TrainingCompleted")):
        schema = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model}"}
