"""Structured JSON logs that carry the current job id and trace id."""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from quartet_shared.tracing import current_trace_id

# (job id, traceparent) in one variable: the consumer binds a context per record and logs rarely, so the
# trace id is cut out of the traceparent when a line is written, not when the context is bound.
_context: contextvars.ContextVar[tuple[str | None, str | None]] = contextvars.ContextVar(
    "quartet_log_context", default=(None, None)
)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        job_id, traceparent = _context.get()
        record.job_id = job_id
        # Outside a consumed record (an API's request), the current span names the trace when tracing is on.
        record.trace_id = trace_id_of(traceparent) if traceparent else current_trace_id()
        return True


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a line is written, not when logging was configured.

    A stream captured at configuration time may be closed by then (a test runner's capture, a replaced
    stderr), and every later line would fail with "I/O operation on closed file".
    """

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> Any:
        return sys.stderr


def configure_logging(level: str = "INFO", service: str = "quartet") -> None:
    """Send JSON lines to stderr with service, job id and trace id on every record."""
    handler = _StderrHandler()
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(job_id)s %(trace_id)s",
            rename_fields={"levelname": "level", "asctime": "time"},
            static_fields={"service": service},
        )
    )
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # kafka-python logs every reconnect at WARNING/ERROR; during a broker outage that drowns our own lines.
    logging.getLogger("kafka").setLevel(max(logging.WARNING, root.level))


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id inside a W3C traceparent header, if it has one."""
    if not traceparent:
        return None
    parts = traceparent.split("-")
    return parts[1] if len(parts) >= 4 else None


def bind_log_context(job_id: str | None, traceparent: str | None = None) -> contextvars.Token[Any]:
    """Tag log lines with the job id and trace id until `reset_log_context(token)`: the consumer's per-record form."""
    return _context.set((job_id, traceparent))


reset_log_context = _context.reset


@contextmanager
def log_context(job_id: str | None, traceparent: str | None = None) -> Iterator[None]:
    """Tag every log line in the block with the job id and trace id."""
    token = bind_log_context(job_id, traceparent)
    try:
        yield
    finally:
        reset_log_context(token)
