"""Reading the spans a test recorded: find one by name and attributes, and check who is whose parent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from quartet_shared.tracing import trace_with


@contextmanager
def recorded_spans() -> Iterator[InMemorySpanExporter]:
    """Trace into memory for the block (each span kept as it ends), then stop tracing."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace_with(provider)
    try:
        yield exporter
    finally:
        trace_with(None)
        provider.shutdown()


def the_span(spans: InMemorySpanExporter, name: str, kind: SpanKind, **attributes: Any) -> ReadableSpan:
    """The one finished span named `name` of `kind` whose attributes include `attributes` (dots as `__`)."""
    wanted = {k.replace("__", "."): v for k, v in attributes.items()}
    found = [
        s
        for s in spans.get_finished_spans()
        if s.name == name and s.kind is kind and all((s.attributes or {}).get(k) == v for k, v in wanted.items())
    ]
    names = sorted(f"{s.name} ({s.kind.name})" for s in spans.get_finished_spans())
    assert len(found) == 1, f"{len(found)} spans {name} {kind.name} {wanted}; recorded: {names}"
    return found[0]


def assert_child(child: ReadableSpan, parent: ReadableSpan) -> None:
    """`child`'s parent is `parent`, in the same trace."""
    assert child.context is not None and parent.context is not None
    assert child.parent is not None, f"{child.name} has no parent; expected {parent.name}"
    assert (child.parent.trace_id, child.parent.span_id) == (parent.context.trace_id, parent.context.span_id), (
        f"{child.name}'s parent is not {parent.name}"
    )
