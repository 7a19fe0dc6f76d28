"""The kernel's job-service layer with a scripted job function, against the real Kafka, Redis and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import BaseModel
from quartet_contracts.envelope import Envelope
from quartet_contracts.schemas.planning import (
    PlanCancelled,
    PlanProgressed,
    PlanRequested,
)
from quartet_shared.artifacts import ArtifactStore, ResultStore
from quartet_shared.auth import ApiKeys
from quartet_shared.cache import ResilientRedis
from quartet_shared.consumer import ConsumerRunner
from quartet_shared.db import make_engine
from quartet_shared.dlq import list_dead_letters
from quartet_shared.http import create_app
from quartet_shared.jobs import JobStore
from quartet_shared.jobservice import (
    JobApi,
    JobKind,
    JobTopics,
    JobWorker,
    WorkerPorts,
    job_router,
    make_projector,
)
from quartet_shared.producer import Producer
from quartet_shared.settings import KernelSettings
from sqlalchemy import Engine

from tests.support.auth import ADMIN
from tests.support.effects import read_all, wait_until
from tests.support.jobs import wait_status
from tests.support.scripted_jobs import Script, kind_for, spec
from tests.support.tracing import assert_child, the_span

pytestmark = pytest.mark.integration


class System:
    """The API, projector and one or more workers of the scripted kind."""

    def __init__(self, settings: KernelSettings, kind: JobKind, engine: Engine, redis: ResilientRedis) -> None:
        self.settings = settings
        self.kind = kind
        self.store = JobStore(engine, redis)
        self.artifacts = ArtifactStore(engine)
        self.results = ResultStore(engine, f"planning-{kind.topics.jobs}", redis)
        self.script = Script()
        self.producer = Producer(settings)
        self.app: FastAPI = create_app(title="jobs", api_keys=ApiKeys.from_settings(settings))
        self.app.state.job_api = JobApi(kind, self.store, self.producer, self.artifacts)
        self.app.include_router(job_router(kind))
        self.projector: ConsumerRunner = make_projector(kind, settings, self.store)
        self.workers: list[JobWorker] = []

    def worker(self, **overrides: Any) -> JobWorker:
        w = JobWorker(
            self.kind,
            self.settings.model_copy(update=overrides),
            self.script,
            WorkerPorts(self.artifacts, self.results, self.store),
            progress_interval_s=0.05,
        )
        w.start()
        assert w.runner.started.wait(60)
        self.workers.append(w)
        return w

    def close(self) -> None:
        for w in self.workers:
            w.stop(10)
        self.projector.stop(10)
        self.producer.close()


@contextmanager
def running_system(settings: KernelSettings, unique: str) -> Iterator[System]:
    """The API and its projector running on the session's servers, on topics of their own."""
    engine = make_engine(settings.database_url or "")
    redis = ResilientRedis(settings)
    kind = kind_for(JobTopics.of("planning", f"k{unique}."))
    kind.ensure_topics(settings)
    s = System(settings, kind, engine, redis)
    s.projector.start()
    assert s.projector.started.wait(60)
    try:
        yield s
    finally:
        s.close()
        redis.close()
        engine.dispose()


@pytest.fixture
def system(settings: KernelSettings, unique: str) -> Iterator[System]:
    with running_system(settings, unique) as s:
        yield s


@pytest.fixture
def traced_system(spans: InMemorySpanExporter, settings: KernelSettings, unique: str) -> Iterator[System]:
    """The system built while tracing is on: its app instrumented, its spans in `spans`."""
    with running_system(settings, unique) as s:
        yield s


def outcomes(system: System) -> dict[str, list[str]]:
    """ce_types of committed results per job id."""
    out: dict[str, list[str]] = {}
    for env in read_all(system.settings, [system.kind.topics.results], idle_ms=3000):
        out.setdefault(env.subject or "", []).append(env.type.split(".")[2])
    return out


def test_rejected_input_fails_the_job_naming_the_field_without_retrying(system: System) -> None:
    system.worker()
    client = TestClient(system.app, headers=ADMIN)
    job_id = client.post("/jobs", json=spec(seed=1)).json()["id"]
    job = wait_status(client, job_id, "failed")
    assert job["problem"]["field"] == "scenario.start"
    assert "inside threats[0]" in job["problem"]["detail"]
    assert system.script.runs == [job_id]
    assert outcomes(system)[job_id] == ["PlanFailed"]


def test_a_job_failing_every_attempt_still_yields_one_failed_outcome(system: System) -> None:
    system.worker(max_inline_attempts=2, max_attempts=2)
    client = TestClient(system.app, headers=ADMIN)
    job_id = client.post("/jobs", json=spec(seed=5)).json()["id"]
    job = wait_status(client, job_id, "failed")
    assert "RuntimeError: solver crashed" in job["problem"]["detail"]
    assert system.script.runs == [job_id, job_id]
    assert outcomes(system)[job_id] == ["PlanFailed"]
    assert list_dead_letters(system.settings, system.kind.topics.jobs) == []


def test_a_stopping_worker_aborts_its_job_and_another_finishes_it_once(system: System) -> None:
    first = system.worker()
    client = TestClient(system.app, headers=ADMIN)
    system.script.hold.set()
    job_id = client.post("/jobs", json=spec(seed=3)).json()["id"]
    wait_until(lambda: system.script.runs == [job_id], 60, "the first worker to start the job")
    first.stop(10)
    assert outcomes(system).get(job_id) is None
    system.script.hold.clear()
    system.worker()
    job = wait_status(client, job_id, "succeeded")
    assert job["cached"] is False
    assert system.script.runs == [job_id, job_id]
    assert outcomes(system)[job_id] == ["PlanCompleted"]
    assert client.get(f"/jobs/{job_id}/plots/chart.png").content == b"\x89PNG fake"


def test_cancel_of_a_queued_job_and_of_a_running_one(system: System) -> None:
    client = TestClient(system.app, headers=ADMIN)
    queued = client.post("/jobs", json=spec(seed=4)).json()["id"]
    assert client.delete(f"/jobs/{queued}").json()["status"] == "cancelled"
    system.worker()
    running = client.post("/jobs", json=spec(seed=2)).json()["id"]
    assert system.script.running.wait(60)
    wait_status(client, running, "running")
    assert client.delete(f"/jobs/{running}").status_code == 202
    wait_status(client, running, "cancelled", timeout_s=20)
    results = outcomes(system)
    assert results[queued] == ["PlanCancelled"]
    assert results[running] == ["PlanCancelled"]
    assert system.script.runs == [running]


def test_a_spec_over_the_event_bound_is_413_and_not_kept(settings: KernelSettings, tmp_path: Path, unique: str) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    store = JobStore(engine)
    kind = kind_for(JobTopics.of("planning", f"b{unique}."))
    producer = Producer(settings.model_copy(update={"max_event_bytes": 1024}))
    app = create_app(title="jobs", api_keys=ApiKeys.from_settings(settings))
    app.state.job_api = JobApi(kind, store, producer, ArtifactStore(engine))
    app.include_router(job_router(kind))
    big = spec()
    big["scenario"]["threats"] = [{"x": 50, "y": 50 + i * 0.01, "radius": 1} for i in range(40)]
    try:
        answer = TestClient(app, headers=ADMIN).post("/jobs", json=big)
    finally:
        producer.close()
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "bytes, limit 1024" in answer.json()["detail"]
    assert store.list() == []


def test_undecodable_and_over_budget_messages_are_dead_lettered(system: System) -> None:
    system.worker()
    producer = Producer(system.settings)
    producer.send_raw(system.kind.topics.jobs, b"junk", b"not an event", [])
    over = PlanRequested.model_validate(spec(population=100, iterations=1000))
    producer.send(system.kind.topics.jobs, Envelope.of(over, source="/tests", id="over-budget", key="over-budget"))
    producer.close()

    def both() -> bool:
        return len(list_dead_letters(system.settings, system.kind.topics.jobs)) >= 2

    wait_until(both, 180, "two dead letters")  # a loaded machine can take a minute to join the group
    letters = {d.key: d for d in list_dead_letters(system.settings, system.kind.topics.jobs)}
    assert letters["junk"].reason["dlq_error_type"] == "EnvelopeError"
    assert letters["over-budget"].reason["dlq_error_type"] == "PermanentError"
    assert "optimizer.iterations" in letters["over-budget"].reason["dlq_error_message"]
    assert system.script.runs == []


def test_projection_keeps_the_outcome_over_late_progress(system: System) -> None:
    producer = Producer(system.settings)
    topics = system.kind.topics
    raw, sentinel_id = f"{topics.jobs}-raw", f"{topics.jobs}-sentinel"

    def publish(topic: str, job_id: str, event: BaseModel) -> None:
        # One partition for everything, so the sentinel below is projected after the late progress.
        producer.send(topic, Envelope.of(event, source="/tests", subject=job_id, key=job_id), partition=0)
        producer.flush()

    publish(topics.results, raw, PlanCancelled(job_id=raw, iteration=3))
    wait_until(lambda: (r := system.store.get(raw)) is not None and r.finished, 60, "the outcome")
    late = PlanProgressed(job_id=raw, iteration=4, iterations=10, progress=0.4, best_cost=1.0)
    publish(topics.progress, raw, late)
    sentinel = PlanProgressed(job_id=sentinel_id, iteration=1, iterations=10, progress=0.1, best_cost=1.0)
    publish(topics.progress, sentinel_id, sentinel)
    wait_until(
        lambda: (r := system.store.get(sentinel_id)) is not None and r.progress > 0, 60, "the sentinel's projection"
    )
    producer.close()
    record = system.store.get(raw)
    assert record is not None
    assert record.status.value == "cancelled"
    assert record.progress == 0.0
    assert system.store.require(sentinel_id).progress == pytest.approx(0.1)


def test_one_jobs_spans_share_one_trace_across_the_api_kafka_and_the_worker(
    spans: InMemorySpanExporter, traced_system: System
) -> None:
    system = traced_system
    worker = system.worker()
    client = TestClient(system.app, headers=ADMIN)
    job_id = client.post("/jobs", json=spec(seed=3)).json()["id"]
    wait_status(client, job_id, "succeeded")
    topics = system.kind.topics
    request = the_span(spans, "POST /jobs", SpanKind.SERVER)
    sent = the_span(spans, f"send {topics.jobs}", SpanKind.PRODUCER, messaging__message__id=job_id)
    worked = the_span(spans, f"process {topics.jobs}", SpanKind.CONSUMER, messaging__message__id=job_id)
    result = the_span(spans, f"create {topics.results}", SpanKind.PRODUCER, cloudevents__event_subject=job_id)
    # The projector's span ends after the row it wrote is read: wait for it rather than race it.
    wait_until(
        lambda: any(s.name == f"process {topics.results}" for s in spans.get_finished_spans()), 30, "the projection"
    )
    projected = the_span(spans, f"process {topics.results}", SpanKind.CONSUMER, cloudevents__event_subject=job_id)
    assert_child(sent, request)
    assert_child(worked, sent)
    assert_child(result, worked)
    assert_child(projected, result)
    # The worker's group and the projector's are two consumers of real Kafka; the trace is the API's.
    groups = {(s.attributes or {}).get("messaging.consumer.group.name") for s in (worked, projected)}
    assert groups == {worker.runner.group, system.projector.group}
    assert {s.context.trace_id for s in (sent, worked, result, projected) if s.context} == {request.context.trace_id}
