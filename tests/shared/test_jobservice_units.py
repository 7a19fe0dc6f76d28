"""The job-service layer's handling on fakes (no server): the API's decisions, the worker's one outcome per job
and the projector's monotonic rows. The same paths against Kafka, Redis and PostgreSQL are in test_jobservice.py."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka.errors import KafkaTimeoutError
from prometheus_client import REGISTRY
from quartet_contracts.envelope import Envelope
from quartet_contracts.schemas.planning import PlanCancelled, PlanCompleted, PlanFailed, PlanProgressed, PlanRequested
from quartet_shared.auth import ApiKeys
from quartet_shared.consumer import Aborted, DeadLetter, PermanentError
from quartet_shared.http import create_app
from quartet_shared.jobkind import JobOutcome, OnProgress, Progress, ShouldStop
from quartet_shared.jobs import JobStatus
from quartet_shared.jobservice import JobTopics, JobWorker, Projector, job_router
from quartet_shared.settings import KernelSettings
from quartet_shared.testing.fakes import FakePorts, HandlerCall, RecordingProducer

from tests.support.auth import ADMIN, API_KEYS_JSON
from tests.support.scripted_jobs import MAX_EVALUATIONS, Script, ScriptedKind, spec

TOPICS = JobTopics.of("planning", "unit.")
SETTINGS = KernelSettings(max_attempts=3)


@dataclass
class Api:
    """The job API over fakes, served by FastAPI's test client."""

    client: TestClient
    ports: FakePorts


@pytest.fixture
def api() -> Api:
    """A job API whose store, artifacts and producer are fakes."""
    ports = FakePorts()
    kind = ScriptedKind(TOPICS)
    app = create_app(title="jobs", api_keys=ApiKeys.parse(API_KEYS_JSON))
    app.state.job_api = ports.job_api(kind)
    app.include_router(job_router(kind))
    return Api(TestClient(app, headers=ADMIN), ports)


@dataclass
class Worker:
    """A worker over fakes, its progress producer and the scripted job function."""

    worker: JobWorker[Any, Any]
    ports: FakePorts
    progress: RecordingProducer
    script: Script


def make_worker(run: Any = None, interval_s: float = 60.0) -> Worker:
    """A worker whose ports and progress producer are fakes (its runner is built, never started)."""
    ports, progress, script = FakePorts(), RecordingProducer(), Script()
    worker = JobWorker(
        ScriptedKind(TOPICS),
        SETTINGS,
        run or script,
        ports.worker_ports(),
        progress=progress,
        progress_interval_s=interval_s,
    )
    return Worker(worker, ports, progress, script)


def job(job_id: str, attempt: int = 1, **fields: Any) -> tuple[PlanRequested, HandlerCall]:
    """A job's spec and the handler call delivering it with `ce_id` = job id."""
    request = PlanRequested.model_validate(spec(**fields))
    return request, HandlerCall(Envelope.of(request, source="/tests", id=job_id, subject=job_id), attempt=attempt)


def project(ports: FakePorts, *events: Any) -> None:
    """Deliver `events` to a projector over the fake store, each as the worker or API addresses it."""
    projector = Projector(ScriptedKind(TOPICS), ports.store)
    for event in events:
        envelope = Envelope.of(event, source="/tests", subject=event.job_id, key=event.job_id)
        projector.handle(event, HandlerCall(envelope, topic=TOPICS.results).context)


# ---- the API ------------------------------------------------------------------------------------------


def test_a_submitted_job_is_queued_and_its_spec_published_under_its_id(api: Api) -> None:
    answer = api.client.post("/jobs", json=spec(seed=3), headers={"Idempotency-Key": "k-1"})
    assert answer.status_code == 202
    job_id = answer.json()["id"]
    assert api.ports.store.require(job_id).status is JobStatus.QUEUED
    (published,) = api.ports.producer.to(TOPICS.jobs)
    assert (published.id, published.subject, published.data["seed"]) == (job_id, job_id, 3)


def test_unacknowledged_submission_is_503_and_not_kept(api: Api) -> None:
    api.ports.producer.fail_with = KafkaTimeoutError("no broker")
    answer = api.client.post("/jobs", json=spec(), headers={"Idempotency-Key": "k"})
    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert api.ports.store.list() == []
    over = api.client.post("/jobs", json=spec(population=100, iterations=1000))
    assert over.status_code == 422
    assert over.json()["errors"][0]["field"] == "optimizer.iterations"


def test_a_spec_over_the_event_bound_is_413_and_not_kept(api: Api) -> None:
    api.ports.producer.max_event_bytes = 1024
    big = spec()
    big["scenario"]["threats"] = [{"x": 50, "y": 50 + i * 0.01, "radius": 1} for i in range(40)]
    answer = api.client.post("/jobs", json=big)
    assert answer.status_code == 413
    assert "bytes, limit 1024" in answer.json()["detail"]
    assert api.ports.store.list() == [] and api.ports.producer.sent == []


def test_an_idempotency_key_reused_with_another_body_is_422_and_the_same_body_gets_its_job(api: Api) -> None:
    key = {"Idempotency-Key": "order-7"}
    first = api.client.post("/jobs", json=spec(seed=3), headers=key)
    assert first.status_code == 202
    # The same spec spelled differently (a default written out, keys in another order) is the same request.
    respelled = dict(reversed(list({**spec(seed=3), "compare": []}.items())))
    again = api.client.post("/jobs", json=respelled, headers=key)
    assert (again.status_code, again.json()["id"]) == (202, first.json()["id"])
    other = api.client.post("/jobs", json=spec(seed=4), headers=key)
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert "different request body" in other.json()["detail"]
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    assert api.ports.store.require(first.json()["id"]).spec["seed"] == 3
    assert len(api.ports.producer.sent) == 1


def test_delete_of_a_finished_job_is_409_and_publishes_nothing(api: Api) -> None:
    done = api.client.post("/jobs", json=spec(seed=3)).json()["id"]
    api.ports.store.complete(done, {"best_cost": 1.0})
    cancelled = api.client.post("/jobs", json=spec(seed=4)).json()["id"]
    assert api.client.delete(f"/jobs/{cancelled}").status_code == 202
    assert [e.subject for e in api.ports.producer.to(TOPICS.control)] == [cancelled]
    published = len(api.ports.producer.sent)
    for job_id, status in ((done, "succeeded"), (cancelled, "cancelled")):
        answer = api.client.delete(f"/jobs/{job_id}")
        assert answer.status_code == 409
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["job_status"] == status
        assert "cannot be cancelled" in answer.json()["detail"]
    assert len(api.ports.producer.sent) == published
    assert api.ports.store.require(done).status is JobStatus.SUCCEEDED


def test_a_cancelled_jobs_result_and_plot_are_the_same_409(api: Api) -> None:
    job_id = api.client.post("/jobs", json=spec(seed=3)).json()["id"]
    api.client.delete(f"/jobs/{job_id}")
    result = api.client.get(f"/jobs/{job_id}/result")
    plot = api.client.get(f"/jobs/{job_id}/plots/chart.png")
    assert result.status_code == plot.status_code == 409
    assert result.json()["detail"] == plot.json()["detail"]
    done = api.client.post("/jobs", json=spec(seed=4)).json()["id"]
    api.ports.store.complete(done, {"best_cost": 1.0})
    api.ports.artifacts.put_all(done, {"chart": b"\x89PNG fake"})
    assert api.client.get(f"/jobs/{done}/plots/chart.png").content == b"\x89PNG fake"
    assert api.client.get(f"/jobs/{done}/plots/other.png").status_code == 404


# ---- the worker ---------------------------------------------------------------------------------------


def test_a_completed_job_emits_one_outcome_and_is_cached_only_once_committed() -> None:
    w = make_worker()
    w.ports.store.create("j1", "planning", {})
    writes = w.ports.store.writes
    request, call = job("j1", seed=3)
    w.worker.handle(request, call.context)
    assert call.types() == ["quartet.planning.PlanCompleted.v1"]
    (outcome,) = call.emitted
    assert (outcome.topic, outcome.envelope.subject, outcome.envelope.key) == (TOPICS.results, "j1", "j1")
    assert w.ports.artifacts.names("j1") == ["chart"]
    assert w.ports.results.by_hash == {}
    call.commit()
    (cached,) = w.ports.results.by_hash.values()
    assert cached.job_id == "j1" and cached.result["best_cost"] == 1.0
    # The projector, not the worker, writes the job's status.
    assert w.ports.store.writes == writes


def test_an_uncommitted_result_is_never_served_from_the_cache() -> None:
    w = make_worker()
    first, aborted = job("j1", seed=3)
    w.worker.handle(first, aborted.context)
    second, call = job("j2", seed=3)
    w.worker.handle(second, call.context)
    assert w.script.runs == ["j1", "j2"]
    call.commit()
    third, served = job("j3", seed=3)
    w.worker.handle(third, served.context)
    assert w.script.runs == ["j1", "j2"]
    completed = PlanCompleted.model_validate(served.emitted[0].envelope.data)
    assert (completed.job_id, completed.cached, completed.plots) == ("j3", True, ["chart"])
    assert w.ports.artifacts.get("j3", "chart") == w.ports.artifacts.get("j2", "chart")


def test_progress_goes_out_at_once_throttled_keeping_the_first_and_the_final() -> None:
    w = make_worker(interval_s=60.0)
    request, call = job("j1", seed=3)
    w.worker.handle(request, call.context)
    progress = w.progress.to(TOPICS.progress)
    fractions = [PlanProgressed.model_validate(e.data).progress for e in progress]
    assert fractions[0] == pytest.approx(0.2) and set(fractions[1:]) == {1.0}
    assert {(e.subject, e.key) for e in progress} == {("j1", "j1")}
    assert call.types() == ["quartet.planning.PlanCompleted.v1"]


def test_bad_input_fails_the_job_naming_the_field_without_retrying() -> None:
    w = make_worker()
    request, call = job("j1", seed=1)
    w.worker.handle(request, call.context)
    failed = PlanFailed.model_validate(call.emitted[0].envelope.data)
    assert (failed.field, failed.retryable) == ("scenario.start", False)
    project(w.ports, failed)
    problem = w.ports.store.require("j1").problem
    assert problem is not None
    assert (problem["status"], problem["errors"][0]["field"]) == (422, "scenario.start")


def test_a_crash_is_retried_until_the_last_attempt_then_fails_as_internal() -> None:
    w = make_worker()
    for attempt in range(1, SETTINGS.max_attempts):
        request, call = job("j1", attempt=attempt, seed=5)
        with pytest.raises(RuntimeError, match="solver crashed"):
            w.worker.handle(request, call.context)
        assert call.emitted == []
    request, last = job("j1", attempt=SETTINGS.max_attempts, seed=5)
    w.worker.handle(request, last.context)
    failed = PlanFailed.model_validate(last.emitted[0].envelope.data)
    assert failed.retryable and failed.error.startswith("RuntimeError: solver crashed")
    project(w.ports, failed)
    problem = w.ports.store.require("j1").problem
    assert problem is not None and problem["status"] == 500


def test_a_refused_spec_is_a_permanent_error_and_its_dead_letter_still_fails_the_job() -> None:
    w = make_worker()
    over, call = job("j1", population=100, iterations=MAX_EVALUATIONS // 100 + 1)
    with pytest.raises(PermanentError, match=r"optimizer\.iterations"):
        w.worker.handle(over, call.context)
    assert w.script.runs == []
    emitted: list[Envelope] = []
    w.worker.give_up(DeadLetter(call.context.record, PermanentError("refused"), 1), lambda _t, e: emitted.append(e))
    (failed,) = emitted
    assert (failed.type, failed.subject) == ("quartet.planning.PlanFailed.v1", "j1")


def test_a_job_cancelled_before_it_runs_is_cancelled_without_running() -> None:
    w = make_worker()
    w.ports.store.create("j1", "planning", {})
    w.ports.store.cancel("j1")
    request, call = job("j1", seed=3)
    w.worker.handle(request, call.context)
    assert call.types() == ["quartet.planning.PlanCancelled.v1"]
    assert w.script.runs == []


def test_a_running_job_cancelled_through_the_store_stops_and_says_where() -> None:
    ports_box: list[FakePorts] = []

    def cancelled_at_step_2(job_id: str, _spec: Any, on_progress: OnProgress, should_stop: ShouldStop) -> JobOutcome:
        deadline = time.monotonic() + 10
        for step in range(1, 1_000_000):
            if should_stop() or time.monotonic() > deadline:
                return JobOutcome(None, cancelled=True, last=Progress(step - 1, 100, 0.01 * (step - 1)))
            on_progress(Progress(step, 100, 0.01 * step))
            if step == 2:
                ports_box[0].store.cancel(job_id)
            time.sleep(0.01)
        raise AssertionError("never stopped")

    w = make_worker(cancelled_at_step_2)
    ports_box.append(w.ports)
    w.ports.store.create("j1", "planning", {})
    request, call = job("j1", seed=3)
    w.worker.handle(request, call.context)
    assert call.types() == ["quartet.planning.PlanCancelled.v1"]
    assert PlanCancelled.model_validate(call.emitted[0].envelope.data).iteration >= 2


def test_a_stopping_worker_aborts_its_job_leaving_no_outcome() -> None:
    w = make_worker()
    request, call = job("j1", seed=2)
    stopper = threading.Thread(target=lambda: (w.script.running.wait(10), call.stopping.set()))
    stopper.start()
    with pytest.raises(Aborted):
        w.worker.handle(request, call.context)
    stopper.join(10)
    assert call.emitted == [] and call.deferred == []


# ---- the projector ------------------------------------------------------------------------------------


def _completed(job_id: str) -> PlanCompleted:
    return PlanCompleted.model_validate(
        {
            "job_id": job_id,
            "spec_hash": "h",
            "optimizer": "iboa",
            "encoding": "spherical",
            "best_cost": 2.5,
            "cost": {"total": 2.5, "length": 2.5, "threat": 0.0, "altitude": 0.0, "smoothness": 0.0},
            "feasible": True,
            "waypoints": [],
            "path": [],
            "fitness_curve": [2.5],
            "evaluations": 5,
            "runtime_s": 0.1,
            "plots": [],
        }
    )


def _progressed(job_id: str, fraction: float) -> PlanProgressed:
    return PlanProgressed(job_id=job_id, iteration=1, iterations=10, progress=fraction, best_cost=1.0)


def test_the_projector_turns_each_event_into_the_jobs_row() -> None:
    ports = FakePorts()
    project(ports, _progressed("run", 0.3), _completed("done"), PlanCancelled(job_id="gone", iteration=4))
    project(ports, PlanFailed(job_id="bad", error="inside threats[0]", field="scenario.start", retryable=False))
    running = ports.store.require("run")
    assert (running.status, running.progress) == (JobStatus.RUNNING, pytest.approx(0.3))
    assert ports.store.require("done").status is JobStatus.SUCCEEDED
    assert ports.store.result("done") == _completed("done").model_dump(mode="json")
    assert ports.store.require("gone").status is JobStatus.CANCELLED
    bad = ports.store.require("bad")
    assert bad.status is JobStatus.FAILED and bad.problem is not None
    assert bad.problem["detail"] == "scenario.start: inside threats[0]"


def test_a_redelivered_event_changes_nothing() -> None:
    ports = FakePorts()
    project(ports, _progressed("j1", 0.5), _completed("j1"))
    after = ports.store.require("j1")
    writes = ports.store.writes
    project(ports, _progressed("j1", 0.5), _completed("j1"), PlanCancelled(job_id="j1", iteration=1))
    assert ports.store.require("j1") == after
    assert ports.store.writes == writes


def test_events_out_of_order_keep_the_outcome_and_the_highest_progress() -> None:
    ports = FakePorts()
    project(ports, _progressed("late", 0.6), _progressed("late", 0.2))
    assert ports.store.require("late").progress == pytest.approx(0.6)
    project(ports, _completed("first"), _progressed("first", 0.4))
    outcome = ports.store.require("first")
    assert (outcome.status, outcome.progress) == (JobStatus.SUCCEEDED, 1.0)
    assert outcome.started_at is not None and outcome.finished_at is not None


def test_the_projector_refuses_what_names_no_job_or_is_not_its_kinds() -> None:
    projector = Projector(ScriptedKind(TOPICS), FakePorts().store)
    event = _progressed("j1", 0.1)
    unnamed = HandlerCall(Envelope.of(event, source="/tests"))
    with pytest.raises(PermanentError, match="names no job"):
        projector.handle(event, unnamed.context)
    stranger = PlanRequested.model_validate(spec())
    call = HandlerCall(Envelope.of(stranger, source="/tests", subject="j1"))
    with pytest.raises(PermanentError, match="not an event of planning jobs"):
        projector.handle(stranger, call.context)


def _outcomes(outcome: str) -> float:
    return REGISTRY.get_sample_value("quartet_job_outcomes_total", {"kind": "planning", "outcome": outcome}) or 0.0


def test_each_job_that_finishes_counts_once_under_its_outcome_and_redeliveries_count_nothing() -> None:
    """The dashboards' job outcomes: counted when an event finishes a job, never again for the same job."""
    before = {o: _outcomes(o) for o in ("succeeded", "failed", "cancelled")}
    ports = FakePorts()
    failed = PlanFailed(job_id="o-bad", error="boom", retryable=False)
    project(ports, _progressed("o-ok", 0.5), _completed("o-ok"), failed, PlanCancelled(job_id="o-gone", iteration=1))
    project(ports, _completed("o-ok"), failed, PlanCancelled(job_id="o-ok", iteration=2))
    assert {o: _outcomes(o) - before[o] for o in before} == {"succeeded": 1, "failed": 1, "cancelled": 1}


def test_a_queued_job_cancelled_by_the_api_counts_as_cancelled_once(api: Api) -> None:
    before = _outcomes("cancelled")
    job_id = api.client.post("/jobs", json=spec()).json()["id"]
    assert api.client.delete(f"/jobs/{job_id}").status_code == 202
    assert api.client.delete(f"/jobs/{job_id}").status_code == 409
    assert _outcomes("cancelled") - before == 1
