"""Traces across the job services on the in-memory broker: one job's spans form one tree, from POST /jobs
through the producer, the worker and its result event to the projector; and the OTEL_* variables decide
whether and where spans go. The same trace against real Kafka is in test_jobservice.py."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from quartet_contracts.envelope import Envelope
from quartet_shared.auth import ApiKeys
from quartet_shared.consumer import ConsumerRunner
from quartet_shared.http import create_app
from quartet_shared.jobs import JobStatus
from quartet_shared.jobservice import JobApi, JobTopics, JobWorker, job_router, make_projector
from quartet_shared.producer import Producer
from quartet_shared.runner.model import header
from quartet_shared.testing.broker import InMemoryBroker
from quartet_shared.testing.fakes import FakePorts
from quartet_shared.tracing import TRACING, TracingConfigError, configure_tracing, exporters_from, producing, trace_with

from tests.support.auth import ADMIN, API_KEYS_JSON
from tests.support.inmem import fast_settings
from tests.support.scripted_jobs import Script, ScriptedKind, spec
from tests.support.tracing import assert_child, the_span

TOPICS = JobTopics.of("planning", "traced.")
PROJECTOR = f"{TOPICS.results}-projector"
WORKER = f"{TOPICS.jobs}-worker"


class JobsInMemory:
    """A job service's API, worker and projector, each with its real code, on one in-memory broker."""

    def __init__(self) -> None:
        self.broker = InMemoryBroker()
        for topic in (TOPICS.jobs, TOPICS.progress, TOPICS.results, TOPICS.control):
            self.broker.create_topic(topic)
        settings = fast_settings()
        self.ports = FakePorts()
        kind = ScriptedKind(TOPICS)
        self.producer = Producer(settings, clients=self.broker)
        self.progress = Producer(settings, clients=self.broker)
        app = create_app(title="jobs", api_keys=ApiKeys.parse(API_KEYS_JSON))
        app.state.job_api = JobApi(kind, self.ports.store, self.producer, self.ports.artifacts)
        app.include_router(job_router(kind))
        self.client = TestClient(app, headers=ADMIN)
        runner = functools.partial(ConsumerRunner, clients=self.broker, poll_timeout_ms=20)
        # Its runner alone is started: the worker's cancel listener and topic creation speak to a real broker.
        self.worker = JobWorker(
            kind, settings, Script(), self.ports.worker_ports(), progress=self.progress, runner_class=runner
        )
        self.projector = make_projector(kind, settings, self.ports.store, clients=self.broker)

    def run_job(self, seed: int, status: JobStatus) -> str:
        """Post one job and wait until the projector has recorded it ending in `status`; its id."""
        self.worker.runner.start()
        self.projector.start()
        try:
            answer = self.client.post("/jobs", json=spec(seed=seed))
            assert answer.status_code == 202, answer.text
            job_id: str = answer.json()["id"]
            reached = self.broker.wait_until(
                lambda: self.ports.store.require(job_id).status is status and self.broker.drained(PROJECTOR), 20
            )
        finally:
            self.worker.runner.stop(10)
            self.projector.stop(10)
            self.progress.close(1)
            self.producer.close(1)
        assert self.worker.runner.error is None and self.projector.error is None
        assert reached, f"job {job_id} is {self.ports.store.require(job_id).status}, not {status}"
        return job_id


@pytest.fixture
def jobs(spans: InMemorySpanExporter) -> JobsInMemory:
    """The job service on the in-memory broker, built while tracing is on (the API's server spans need that)."""
    return JobsInMemory()


def test_one_jobs_spans_form_one_tree_from_post_jobs_to_the_projector(
    spans: InMemorySpanExporter, jobs: JobsInMemory
) -> None:
    job_id = jobs.run_job(seed=3, status=JobStatus.SUCCEEDED)
    request = the_span(spans, "POST /jobs", SpanKind.SERVER)
    sent = the_span(spans, f"send {TOPICS.jobs}", SpanKind.PRODUCER, messaging__message__id=job_id)
    worked = the_span(spans, f"process {TOPICS.jobs}", SpanKind.CONSUMER, messaging__consumer__group__name=WORKER)
    result = the_span(spans, f"create {TOPICS.results}", SpanKind.PRODUCER, cloudevents__event_subject=job_id)
    projected = the_span(
        spans, f"process {TOPICS.results}", SpanKind.CONSUMER, messaging__consumer__group__name=PROJECTOR
    )
    assert_child(sent, request)
    assert_child(worked, sent)
    assert_child(result, worked)
    assert_child(projected, result)
    assert str((result.attributes or {})["cloudevents.event_type"]).endswith("PlanCompleted.v1")
    # Progress goes out from the handler too, on its own producer: its sends and their projection join the tree.
    progress_sends = [s for s in spans.get_finished_spans() if s.name == f"send {TOPICS.progress}"]
    assert len(progress_sends) >= 2
    for span in progress_sends:
        assert_child(span, worked)
    assert {s.context.trace_id for s in spans.get_finished_spans() if s.context} == {request.context.trace_id}
    # What crossed the broker is what the spans say: each record's traceparent names the span that made it.
    (job,) = jobs.broker.records(TOPICS.jobs)
    version, trace_id, span_id, _flags = (header(job, "traceparent") or "").split("-")
    assert (version, trace_id, span_id) == ("00", f"{sent.context.trace_id:032x}", f"{sent.context.span_id:016x}")


def test_a_failed_jobs_outcome_stays_in_its_trace_and_its_span_says_why(
    spans: InMemorySpanExporter, jobs: JobsInMemory
) -> None:
    job_id = jobs.run_job(seed=1, status=JobStatus.FAILED)
    sent = the_span(spans, f"send {TOPICS.jobs}", SpanKind.PRODUCER, messaging__message__id=job_id)
    worked = the_span(spans, f"process {TOPICS.jobs}", SpanKind.CONSUMER)
    failed = the_span(spans, f"create {TOPICS.results}", SpanKind.PRODUCER, cloudevents__event_subject=job_id)
    assert_child(worked, sent)
    assert_child(failed, worked)
    assert str((failed.attributes or {})["cloudevents.event_type"]).endswith("PlanFailed.v1")


def test_with_tracing_off_nothing_is_recorded_and_no_traceparent_is_sent() -> None:
    assert not TRACING.on
    jobs = JobsInMemory()
    jobs.run_job(seed=3, status=JobStatus.SUCCEEDED)
    for topic in (TOPICS.jobs, TOPICS.progress, TOPICS.results):
        records = jobs.broker.records(topic)
        assert records and all(header(r, "traceparent") is None for r in records)


# ---- configuration by the OTEL_* variables --------------------------------------------------------------


ENDPOINT = "http://127.0.0.1:4318"


@pytest.mark.parametrize(
    ("environ", "exporters"),
    [
        ({}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, [OTLPSpanExporter]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{ENDPOINT}/v1/traces"}, [OTLPSpanExporter]),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, [OTLPSpanExporter]),
        ({"OTEL_TRACES_EXPORTER": "console,otlp"}, [ConsoleSpanExporter, OTLPSpanExporter]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, []),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, []),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, [OTLPSpanExporter]),
    ],
)
def test_spans_are_exported_only_where_the_otel_variables_ask(environ: dict[str, str], exporters: list[type]) -> None:
    assert [type(e) for e in exporters_from(environ)] == exporters


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER names 'zipkin'"),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
    ],
)
def test_an_exporter_that_is_not_installed_is_refused_naming_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(TracingConfigError, match=named):
        exporters_from(environ)


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver's one route: keeps each POST's path and body on its server."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        return


@pytest.fixture
def collector() -> Iterator[ThreadingHTTPServer]:
    """A loopback stand-in for an OpenTelemetry collector's OTLP/HTTP port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_with_an_otlp_endpoint_spans_reach_it_under_the_services_name(
    collector: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{collector.server_address[1]}")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "traced-service")
    provider = configure_tracing("planner")
    assert provider is not None and TRACING.on
    try:
        with producing("t", Envelope(type="quartet.test.Item.v1", source="/test", data={}, id="e-1")) as traced:
            assert traced.traceparent is not None
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()
        trace_with(None)
    ((path, body),) = collector.received  # type: ignore[attr-defined]
    assert path == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(body)
    (resource_spans,) = request.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
    (span,) = [s for scope in resource_spans.scope_spans for s in scope.spans]
    assert (service, span.name, f"{span.trace_id.hex()}") == ("traced-service", "send t", traced.traceparent[3:35])


def test_without_an_endpoint_or_exporter_tracing_stays_off(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"):
        monkeypatch.delenv(name, raising=False)
    assert configure_tracing("planner") is None
    assert not TRACING.on
