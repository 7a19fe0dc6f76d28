"""Structured JSON logs that carry the current job id and trace id."""

from __future__ import annotations

import contextvars
import logging
import sys

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


class log_context:  # noqa: N801 - used like the function it replaced: `with log_context(job, trace):`
    """Tag every log line in the block with the job id and trace id.

    A class rather than a generator context manager: the consumer enters one per record, and this costs a
    third as much.
    """

    __slots__ = ("_job_id", "_tokens", "_traceparent")

    def __init__(self, job_id: str | None, traceparent: str | None = None) -> None:
        self._job_id = job_id
        self._traceparent = traceparent

    def __enter__(self) -> None:
        self._tokens = (job_id_var.set(self._job_id), trace_id_var.set(trace_id_of(self._traceparent)))

    def __exit__(self, *exc: object) -> None:
        job_token, trace_token = self._tokens
        job_id_var.reset(job_token)
        trace_id_var.reset(trace_token)
