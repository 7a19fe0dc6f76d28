"""The typed job kind and the one failure path, on the kernel's fakes (no servers)."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any, cast

import pytest
from fastapi import FastAPI
from kafka.consumer.fetcher import ConsumerRecord
from quartet_contracts.envelope import Envelope
from quartet_contracts.schemas.planning import PlanCompleted, PlanProgressed, PlanRequested
from quartet_shared.consumer import Context, DeadLetter, PermanentError
from quartet_shared.http import Problem
from quartet_shared.jobkind import FAILURE_REASON_CHARS, JobKind, JobRejected, JobTopics, failure_of, problem_body
from quartet_shared.jobs import JobStatus
from quartet_shared.jobservice import JobWorker, Projector, job_router
from quartet_shared.settings import KernelSettings
from quartet_shared.testing.fakes import FakePorts

from tests.support.scripted_jobs import MAX_EVALUATIONS, Script, ScriptedKind, spec

TOPICS = JobTopics.of("planning", "unit.")


class _Text:
    """Equal to any non-empty text (a message whose wording is not the point)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other)


ANY = _Text()


def context(envelope: Envelope, emitted: list[Envelope]) -> Context:
    """A handler's context as the runner builds it, collecting what the handler emits."""
    return Context(
        envelope, cast(ConsumerRecord, None), 1, threading.Event(), lambda _t, e: emitted.append(e), lambda _cb: None
    )


def test_failure_of_reads_every_error_one_way() -> None:
    rejected = JobRejected("seed", "must be positive")
    assert failure_of(rejected) is rejected
    wrapped = PermanentError("seed: must be positive")
    wrapped.__cause__ = rejected
    assert failure_of(wrapped) is rejected
    crashed = failure_of(RuntimeError("x" * 1000))
    assert crashed.internal and crashed.field is None
    assert crashed.message.startswith("RuntimeError: x") and len(crashed.message) == FAILURE_REASON_CHARS
    assert not rejected.internal


def test_a_problem_body_lists_its_field_as_every_422_does() -> None:
    body = problem_body(422, "Plan rejected", "inside threats[0]", "scenario.start", hint="move it")
    assert body["errors"] == [{"field": "scenario.start", "message": "inside threats[0]"}]
    assert (body["field"], body["hint"]) == ("scenario.start", "move it")
    assert body["detail"] == "scenario.start: inside threats[0]"
    assert problem_body(422, "Plan rejected", "seed: must be positive", "seed")["detail"] == "seed: must be positive"
    assert "errors" not in problem_body(500, "Planning failed", "RuntimeError: boom")


def test_a_kind_is_a_class_that_must_build_every_event() -> None:
    class Half(JobKind[PlanRequested, PlanProgressed, PlanCompleted, Any]):
        name = "half"

        def spec_hash(self, spec: PlanRequested) -> str:
            return "h"

    with pytest.raises(TypeError, match="abstract"):
        Half()  # type: ignore[abstract]
    kind = ScriptedKind()
    assert (kind.topics.jobs, kind.source) == ("planning.jobs", "/quartet/planning")


def test_the_projector_reads_progress_through_the_kind_not_by_field_name() -> None:
    class ByIteration(ScriptedKind):
        def progress_fraction(self, event: PlanProgressed) -> float:
            return event.iteration / event.iterations

    store = FakePorts().store
    store.create("j1", "planning", {})
    event = PlanProgressed(job_id="j1", iteration=5, iterations=10, progress=0.1, best_cost=1.0)
    envelope = Envelope.of(event, source="/tests", subject="j1", key="j1")
    Projector(ByIteration(TOPICS), store).handle(event, context(envelope, []))
    record = store.require("j1")
    assert (record.status, record.progress) == (JobStatus.RUNNING, 0.5)


def test_the_worker_never_writes_the_job_status() -> None:
    ports = FakePorts()
    store = ports.store
    kind = ScriptedKind(TOPICS)
    worker = JobWorker(kind, KernelSettings(), Script(), ports.worker_ports())
    store.create("j1", "planning", {})
    request = PlanRequested.model_validate(spec(seed=3))
    emitted: list[Envelope] = []
    worker.handle(request, context(Envelope.of(request, source="/tests", id="j1"), emitted))
    assert [e.type for e in emitted] == ["quartet.planning.PlanCompleted.v1"]
    after = store.require("j1")
    assert (after.status, after.version) == (JobStatus.QUEUED, 1)


def test_a_refused_job_gets_the_same_problem_from_the_api_and_from_a_worker() -> None:
    """The API's 422 at submit and the failed job's problem after a worker refused it come from one path."""
    ports = FakePorts()
    store = ports.store
    kind = ScriptedKind(TOPICS)
    over = PlanRequested.model_validate(spec(population=100, iterations=MAX_EVALUATIONS // 100 + 1))
    api = ports.job_api(kind)
    with pytest.raises(Problem) as at_api:
        api.submit(over, "key-1")

    worker = JobWorker(kind, KernelSettings(), Script(), FakePorts().worker_ports())
    with pytest.raises(PermanentError) as refused:
        worker.handle(over, context(Envelope.of(over, source="/tests", id="j2"), []))
    record = SimpleNamespace(headers=[("ce_id", b"j2")])
    emitted: list[Envelope] = []
    worker.give_up(DeadLetter(cast(ConsumerRecord, record), refused.value, 1), lambda _t, e: emitted.append(e))
    (failed,) = emitted
    Projector(kind, store).handle(kind.failed_model.model_validate(failed.data), context(failed, []))
    stored = store.require("j2").problem
    assert stored is not None
    problem = at_api.value
    assert (problem.status, problem.title, problem.detail) == (stored["status"], stored["title"], stored["detail"])
    assert problem.extensions["errors"] == stored["errors"] == [{"field": "optimizer.iterations", "message": ANY}]


def test_openapi_documents_the_status_and_result_as_their_models() -> None:
    app = FastAPI()
    app.include_router(job_router(ScriptedKind(TOPICS)))
    schema = app.openapi()

    def ok(path: str, method: str = "get") -> Any:
        return schema["paths"][path][method]["responses"]["200" if method == "get" else "202"]["content"][
            "application/json"
        ]["schema"]

    assert ok("/jobs/{job_id}") == {"$ref": "#/components/schemas/JobPublic"}
    assert ok("/jobs/{job_id}/result") == {"$ref": "#/components/schemas/PlanCompleted"}
    assert ok("/jobs")["items"] == {"$ref": "#/components/schemas/JobPublic"}
    assert ok("/jobs/{job_id}", "delete") == {"$ref": "#/components/schemas/JobPublic"}
    components = schema["components"]["schemas"]
    assert {"status", "progress", "links"} <= set(components["JobPublic"]["properties"])
    assert {"best_cost", "path", "result_ref"} <= set(components["PlanCompleted"]["properties"])
