"""What handlers and the runner's parts share: subscriptions, the handler's context, dead letters, headers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CorruptRecordError, InvalidRecordError, MessageSizeTooLargeError
from kafka.structs import OffsetAndMetadata
from prometheus_client import Histogram
from pydantic import BaseModel
from quartet_contracts.envelope import Envelope, EnvelopeError, decode
from quartet_contracts.topics import RETRY_SUFFIX

M = TypeVar("M", bound=BaseModel)

# Headers the kernel adds; a replay strips them so the record goes back exactly as it first came.
H_ATTEMPT = "quartet_attempt"
H_NOT_BEFORE = "quartet_not_before_ms"
H_FIRST_FAILURE = "quartet_first_failure"
H_ORIGINAL_TOPIC = "dlq_original_topic"
H_ORIGINAL_PARTITION = "dlq_original_partition"
H_ORIGINAL_OFFSET = "dlq_original_offset"
H_ERROR_TYPE = "dlq_error_type"
H_ERROR_MESSAGE = "dlq_error_message"
H_ATTEMPTS = "dlq_attempts"
H_DLQ_FIRST = "dlq_first_failure_time"
H_DLQ_LAST = "dlq_last_failure_time"
H_GROUP = "dlq_consumer_group"
KERNEL_HEADERS = frozenset(
    {
        H_ATTEMPT,
        H_NOT_BEFORE,
        H_FIRST_FAILURE,
        H_ORIGINAL_TOPIC,
        H_ORIGINAL_PARTITION,
        H_ORIGINAL_OFFSET,
        H_ERROR_TYPE,
        H_ERROR_MESSAGE,
        H_ATTEMPTS,
        H_DLQ_FIRST,
        H_DLQ_LAST,
        H_GROUP,
    }
)


class Mode(StrEnum):
    """How a runner commits."""

    AT_LEAST_ONCE = "at_least_once"
    TRANSACTIONAL = "transactional"


class PermanentError(Exception):
    """A handler's verdict that retrying cannot help: the record goes straight to the dead-letter topic."""


class Aborted(Exception):
    """Raised by a handler that gave up its unit of work because the runner is stopping."""


@dataclass(slots=True)
class Context:
    """What a handler gets beside its typed message."""

    envelope: Envelope
    record: ConsumerRecord
    attempt: int
    stopping: threading.Event
    _emit: Callable[[str, Envelope], None]
    _after_commit: Callable[[Callable[[], None]], None]

    def emit(self, topic: str, envelope: Envelope) -> None:
        """Produce an event as part of this record's unit of work (inside the transaction in that mode)."""
        self._emit(topic, envelope)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this record's unit of work is committed, and never if it is not.

        A crash between the commit and the call skips it, so it may only do what can be lost (fill a cache).
        """
        self._after_commit(callback)


Handler = Callable[[M, Context], None]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record the runner has given up on, as its subscription's `on_dead_letter` hook sees it."""

    record: ConsumerRecord
    error: BaseException
    attempts: int

    def header(self, name: str) -> str | None:
        """A header of the record as text, None when absent or empty (readable even if the record is not)."""
        return header(self.record, name)

    @property
    def event_id(self) -> str | None:
        """The record's `ce_id`, when it has a readable one."""
        return self.header("ce_id")


Emit = Callable[[str, Envelope], None]
DeadLetterHook = Callable[[DeadLetter, Emit], None]


@dataclass(frozen=True)
class Subscription(Generic[M]):
    """A topic and the typed handler for its records; `model` None means "the schema `ce_type` names"."""

    topic: str
    handler: Handler[M]
    model: type[M] | None = None
    retry: bool = True
    # Called when one of its records is dead-lettered, whatever the reason; what it emits is committed with the
    # dead letter, so whoever waits on that record (a job's status) still gets a final answer.
    on_dead_letter: DeadLetterHook | None = None


@dataclass(slots=True)
class Route:
    """What the runner needs for each record of one consumed topic, looked up once instead of per record."""

    sub: Subscription[Any]
    base_topic: str
    is_retry: bool
    timings: Histogram


@dataclass
class Failure:
    """A record's failed attempts so far."""

    error: BaseException
    attempts: int
    first_failure: str
    permanent: bool


@dataclass
class BatchState:
    """What one batch has done so far: offsets to commit, ids done, changelog records, deferred callbacks."""

    offsets: dict[TopicPartition, OffsetAndMetadata] = field(default_factory=dict)
    done_ids: list[str] = field(default_factory=list)
    dedup_records: list[tuple[TopicPartition, str]] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    processed: int = 0


def backoff_delay(attempt: int, base_s: float, max_s: float) -> float:
    """Exponential backoff: base·2^(attempt-1), capped."""
    return float(min(max_s, base_s * (2 ** max(0, attempt - 1))))


def now_iso() -> str:
    """The current UTC time as ISO 8601."""
    return datetime.now(UTC).isoformat()


Decoded = tuple[ConsumerRecord, Envelope | None, Exception | None]

# Errors about a record itself, which no retry changes: its input is dead-lettered instead of retried forever.
# (An authorisation failure is not among them: dead-lettering every input for a wrong ACL would be worse.)
REFUSED_ERRORS = (MessageSizeTooLargeError, InvalidRecordError, CorruptRecordError)


def refused(exc: BaseException | None) -> bool:
    """Whether a failure (or what caused it) is the broker refusing a record for good."""
    while exc is not None:
        if isinstance(exc, REFUSED_ERRORS):
            return True
        exc = exc.__cause__
    return False


def decode_all(records: list[ConsumerRecord]) -> list[Decoded]:
    """Each record with its envelope, or with the EnvelopeError that will dead-letter it."""
    out: list[Decoded] = []
    for rec in records:
        try:
            out.append((rec, decode(rec.key, rec.value, rec.headers), None))
        except EnvelopeError as exc:
            out.append((rec, None, exc))
    return out


def ids_of(batch: dict[TopicPartition, list[ConsumerRecord]]) -> list[str]:
    """The event ids of a batch, read from the headers alone (a record without one is left out)."""
    return [i for records in batch.values() for rec in records if (i := header(rec, "ce_id")) is not None]


def header(rec: ConsumerRecord, wanted: str) -> str | None:
    """The first header `wanted` of a record as text, None when absent or empty."""
    for name, value in rec.headers or ():
        if name == wanted:
            return value.decode("utf-8", "replace") if value else None
    return None


def base_partition(tp: TopicPartition) -> TopicPartition:
    """The base topic's partition for a retry topic's (retries share their base partition's dedup)."""
    return TopicPartition(tp.topic.removesuffix(RETRY_SUFFIX), tp.partition)


def original_headers(headers: list[tuple[str, bytes | None]] | None) -> list[tuple[str, bytes]]:
    """A record's headers without anything the kernel added (for replays)."""
    return [(k, v or b"") for k, v in (headers or []) if k not in KERNEL_HEADERS and k != "dlq_via_topic"]
