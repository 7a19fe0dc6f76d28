"""Structured logs: every line inside a log context carries its job id and trace id, and nothing leaks out."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from quartet_shared.logs import configure_logging, log_context, trace_id_of
from quartet_shared.tracing import TRACING


@pytest.fixture
def configured() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("INFO", service="test")
    yield
    root.handlers[:], level = saved
    root.setLevel(level)


@pytest.mark.usefixtures("configured")
def test_context_tags_lines_and_is_undone_on_exit(capsys: pytest.CaptureFixture[str]) -> None:
    log = logging.getLogger("quartet.test")
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with log_context("job-1", trace):
        log.info("outer")
        with log_context("job-2"):
            log.info("inner")
        log.info("outer again")
    with pytest.raises(RuntimeError), log_context("job-3"):
        raise RuntimeError("boom")
    log.info("after")
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(r["message"], r["job_id"], r["trace_id"]) for r in records] == [
        ("outer", "job-1", "4bf92f3577b34da6a3ce929d0e0e4736"),
        ("inner", "job-2", None),
        ("outer again", "job-1", "4bf92f3577b34da6a3ce929d0e0e4736"),
        ("after", None, None),
    ]
    assert all(r["service"] == "test" and r["level"] == "INFO" for r in records)


@pytest.mark.usefixtures("configured")
def test_with_tracing_on_a_line_outside_a_record_carries_the_current_spans_trace_id(
    spans: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    log = logging.getLogger("quartet.test")
    with TRACING.tracer.start_as_current_span("request") as span:
        log.info("in a request")
        with log_context("job-1", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"):
            log.info("in a record")
    log.info("outside")
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(r["message"], r["trace_id"]) for r in records] == [
        ("in a request", f"{span.get_span_context().trace_id:032x}"),
        ("in a record", "4bf92f3577b34da6a3ce929d0e0e4736"),
        ("outside", None),
    ]


def test_trace_id_of_ignores_malformed_headers() -> None:
    assert trace_id_of(None) is None
    assert trace_id_of("garbage") is None
    assert trace_id_of("00-abc-def-01") == "abc"


@pytest.mark.usefixtures("configured")
def test_lines_go_to_the_current_stderr_even_after_the_one_at_configuration_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    logging.getLogger("quartet.test").info("first")
    first.close()
    later = io.StringIO()
    monkeypatch.setattr("sys.stderr", later)
    logging.getLogger("quartet.test").info("still written")
    assert json.loads(later.getvalue())["message"] == "still written"
