"""Structured JSON logs that carry the current job id and trace id."""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from pythonjsonlogger.json import JsonFormatter

job_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)
trace_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace_id", default=None)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = job_id_var.get()
        record.trace_id = trace_id_var.get()
        return True


def configure_logging(level: str = "INFO", service: str = "quartet") -> None:
    """Send JSON lines to stderr with service, job id and trace id on every record."""
    handler = logging.StreamHandler(sys.stderr)
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


@contextmanager
def log_context(job_id: str | None, traceparent: str | None = None) -> Iterator[None]:
    """Tag every log line in the block with the job id and trace id."""
    t1 = job_id_var.set(job_id)
    t2 = trace_id_var.set(trace_id_of(traceparent))
    try:
        yield
    finally:
        job_id_var.reset(t1)
        trace_id_var.reset(t2)
