"""OpenTelemetry traces across the services: one trace from an HTTP request through Kafka to every consumer.

The W3C `traceparent` travels as a Kafka header (the envelope's `traceparent`) and, in the rental manager, in
the outbox row, so a job's trace runs POST /jobs → `send T.jobs` → the worker's `process T.jobs` → `create
T.results` → the projector's `process T.results`, and a rental request's runs through its outbox row to the
relay's `send rental.events` and each consumer's `process rental.events`.

Configured by the standard OTEL_* variables (`configure_tracing`): OTLP over HTTP when
`OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set or `OTEL_TRACES_EXPORTER` names
exporters; otherwise nothing at all. Tracing off costs the hot paths one attribute test (`TRACING.on`): no
span, no context, no header is made, since even the API's no-op tracer costs microseconds per record.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from importlib.metadata import entry_points
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from quartet_contracts.envelope import TRACEPARENT, Envelope

_SCOPE = "quartet"
_PROPAGATOR = TraceContextTextMapPropagator()
# Probes and scrapes would bury the requests worth reading; OTEL_PYTHON_FASTAPI_EXCLUDED_URLS overrides this.
_DEFAULT_EXCLUDED_URLS = "healthz,readyz,metrics"
_OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_OTLP_PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
# The OTLP exporter this kernel ships (no gRPC: grpcio would more than double an image for no gain).
_OTLP_HTTP = "otlp_proto_http"


class TracingConfigError(ValueError):
    """The OTEL_* variables ask for something this process cannot do (the message names the variable)."""


class _Switch:
    """Whether this process traces, and through what; read on every record, so a slotted object."""

    __slots__ = ("on", "provider", "tracer")

    def __init__(self) -> None:
        self.on = False
        self.provider: TracerProvider | None = None
        self.tracer: Tracer = trace.NoOpTracer()


TRACING = _Switch()


def trace_with(provider: TracerProvider | None) -> None:
    """Trace through `provider` from now on; None stops tracing (tests hand in one with an in-memory exporter)."""
    TRACING.provider = provider
    TRACING.tracer = provider.get_tracer(_SCOPE) if provider is not None else trace.NoOpTracer()
    TRACING.on = provider is not None


def exporters_from(environ: Mapping[str, str]) -> list[SpanExporter]:
    """The span exporters the OTEL_* variables ask for: none unless an OTLP endpoint or an exporter is named."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [n.strip() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    if not names and any(environ.get(v) for v in _OTLP_ENDPOINTS):
        names = ["otlp"]
    return [_exporter(name, environ) for name in names if name != "none"]


def _exporter(name: str, environ: Mapping[str, str]) -> SpanExporter:
    if name == "otlp":
        protocol = next((environ[v] for v in _OTLP_PROTOCOLS if environ.get(v)), "http/protobuf")
        if protocol != "http/protobuf":
            raise TracingConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: only http/protobuf is installed")
        name = _OTLP_HTTP
    found = entry_points(group="opentelemetry_traces_exporter", name=name)
    if not found:
        known = sorted({"otlp", "none", *(e.name for e in entry_points(group="opentelemetry_traces_exporter"))})
        raise TracingConfigError(f"OTEL_TRACES_EXPORTER names {name!r}; installed: {', '.join(known)}")
    exporter: SpanExporter = next(iter(found)).load()()
    return exporter


def configure_tracing(service_name: str) -> TracerProvider | None:
    """Trace this process as the OTEL_* variables say (OTEL_SERVICE_NAME overrides `service_name`); None when off.

    The SDK reads the rest itself: OTEL_TRACES_SAMPLER, OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*, and the OTLP
    exporter's OTEL_EXPORTER_OTLP_* (endpoint, headers, timeout, certificate, compression).
    """
    exporters = exporters_from(os.environ)
    if not exporters:
        trace_with(None)
        return None
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or service_name})
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    # Global too, so any other OpenTelemetry instrumentation in the process reports to the same place.
    trace.set_tracer_provider(provider)
    trace_with(provider)
    return provider


def tracing_or_exit(service_name: str, prog: str) -> None:
    """`configure_tracing` as a process starts: a bad OTEL_* variable ends it with exit code 2 and its name."""
    try:
        configure_tracing(service_name)
    except TracingConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def instrument_app(app: Any) -> None:
    """Give every request to a FastAPI `app` a server span (when tracing is on at the app's creation)."""
    if not TRACING.on:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    excluded = (
        None
        if os.environ.get("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS") or os.environ.get("OTEL_PYTHON_EXCLUDED_URLS")
        else _DEFAULT_EXCLUDED_URLS
    )
    # Without the ASGI send/receive spans: one span per request, not three.
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=TRACING.provider, excluded_urls=excluded, exclude_spans=["receive", "send"]
    )


def current_traceparent() -> str | None:
    """The current span's W3C traceparent (to store beside what a later process sends), None when there is none."""
    if not TRACING.on:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get(TRACEPARENT)


def current_trace_id() -> str | None:
    """The current span's trace id in hex (for log lines written outside a consumed record), None when none."""
    if not TRACING.on:
        return None
    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else None


def _attributes(topic: str, envelope: Envelope, operation: str) -> dict[str, Any]:
    """OpenTelemetry's messaging and CloudEvents attributes of one record."""
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.operation.type": operation,
        "messaging.message.id": envelope.id,
        "cloudevents.event_id": envelope.id,
        "cloudevents.event_source": envelope.source,
        "cloudevents.event_type": envelope.type,
    }
    if envelope.subject is not None:
        attributes["cloudevents.event_subject"] = envelope.subject
    if envelope.key is not None:
        attributes["messaging.kafka.message.key"] = envelope.key
    return attributes


def _parent(envelope: Envelope) -> Any:
    """The context a record's traceparent names, or None (the current one) when it carries none."""
    if not envelope.traceparent:
        return None
    return _PROPAGATOR.extract({TRACEPARENT: envelope.traceparent})


@contextmanager
def producing(topic: str, envelope: Envelope, operation: str = "send") -> Iterator[Envelope]:
    """A producer span for `envelope` on its way to `topic`; yields the envelope carrying that span's traceparent.

    Its parent is the trace context the envelope already carries (an outbox row's), else the current span.
    `operation` is "send" where the span lasts as long as the send, "create" where the record is only made
    and goes out later with its batch (the runner's outputs, in their transaction).
    """
    with TRACING.tracer.start_as_current_span(
        f"{operation} {topic}",
        context=_parent(envelope),
        kind=SpanKind.PRODUCER,
        attributes=_attributes(topic, envelope, operation),
    ):
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        yield replace(envelope, traceparent=carrier.get(TRACEPARENT, envelope.traceparent))


@contextmanager
def processing(topic: str, group: str, envelope: Envelope, partition: int, offset: int) -> Iterator[Span]:
    """A consumer span for handling one record, a child of the span that produced it (its traceparent)."""
    attributes = _attributes(topic, envelope, "process")
    attributes.update(
        {
            "messaging.consumer.group.name": group,
            "messaging.destination.partition.id": str(partition),
            "messaging.kafka.offset": offset,
        }
    )
    with TRACING.tracer.start_as_current_span(
        f"process {topic}", context=_parent(envelope), kind=SpanKind.CONSUMER, attributes=attributes
    ) as span:
        yield span


def failed(span: Span, error: BaseException) -> None:
    """Mark a span as ended in `error` (caught and settled by the caller, so not raised through the span)."""
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
