"""Structured logs: every line inside a log context carries its job id and trace id, and nothing leaks out."""

from __future__ import annotations

import io
import json
import logging

import pytest
from quartet_shared.logs import configure_logging, log_context, trace_id_of


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("INFO", service="test")
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


def test_context_tags_lines_and_is_undone_on_exit(lines: io.StringIO) -> None:
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
    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert [(r["message"], r["job_id"], r["trace_id"]) for r in records] == [
        ("outer", "job-1", "4bf92f3577b34da6a3ce929d0e0e4736"),
        ("inner", "job-2", None),
        ("outer again", "job-1", "4bf92f3577b34da6a3ce929d0e0e4736"),
        ("after", None, None),
    ]
    assert all(r["service"] == "test" and r["level"] == "INFO" for r in records)


def test_trace_id_of_ignores_malformed_headers() -> None:
    assert trace_id_of(None) is None
    assert trace_id_of("garbage") is None
    assert trace_id_of("00-abc-def-01") == "abc"
