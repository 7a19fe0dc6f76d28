"""The consumer runner: typed handlers, commit after the effect, retries, dead letters, dedup and transactions.

Two modes share one loop:

* ``at_least_once``: handlers make their effect durable themselves (a database transaction that also
  records the message id with :func:`quartet_shared.db.claim_message`); the runner flushes whatever the
  handlers produced and only then commits the batch's offsets.
* ``transactional``: each poll batch is one Kafka transaction holding the handlers' output, the dedup
  changelog records, any dead letters and the consumed offsets (``send_offsets_to_transaction`` with the
  consumer's ``group_metadata()``). A crash anywhere aborts the whole batch, and readers use
  ``read_committed``, so each input yields its output exactly once.

Ids already done are skipped: through a Redis fast path in at-least-once mode, through the changelog held in
memory in transactional mode. In both, transient failures are retried inline with exponential backoff and then
through ``T.retry``, and poison records go to ``T.dlq`` with their reason, so one bad record never stalls its
partition.

A subscription's ``on_dead_letter`` hook is called for each of its records that is dead-lettered (undecodable, a
schema mismatch, a permanent error, exhausted retries, an output refused by the broker or over the event bound);
what it emits joins the dead letter's transaction or commit. Handlers may defer work to ``ctx.after_commit``, run
only once their record's unit of work is committed: a copy of a result kept outside Kafka must never hold what
the topic does not.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import (
    CommitFailedError,
    CorruptRecordError,
    InvalidRecordError,
    KafkaError,
    MessageSizeTooLargeError,
)
from kafka.structs import MemberState, OffsetAndMetadata
from pydantic import BaseModel
from quartet_contracts.envelope import Envelope, EnvelopeError, EventTooLarge, SchemaError, decode, header_map
from quartet_contracts.topics import DEDUP_SUFFIX, DLQ_SUFFIX, RETRY_SUFFIX, TopicSpec, dedup_topic

from quartet_shared.cache import DedupCache, ResilientRedis
from quartet_shared.clients import kafka_consumer, partition_counts, wait_for_partitions
from quartet_shared.logs import bind_log_context, reset_log_context
from quartet_shared.metrics import (
    CONSUMED,
    CONSUMER_LAG,
    CONSUMER_STALLS,
    DEAD_LETTERS,
    DUPLICATES,
    HANDLER_SECONDS,
    RETRIES,
    TRANSACTIONS,
    Timings,
)
from quartet_shared.producer import Producer
from quartet_shared.settings import KernelSettings
from quartet_shared.topics import ensure_topics

log = logging.getLogger(__name__)

BATCH_LINGER_MS = 1000
MAX_POLL_RECORDS = 2000
JOIN_STUCK_S = 3.0
BATCH_BYTES = 512 * 1024

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
        return _header(self.record, name)

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
class _Route:
    """What the runner needs for each record of one consumed topic, looked up once instead of per record."""

    sub: Subscription[Any]
    base_topic: str
    is_retry: bool
    timings: Timings


@dataclass
class _Failure:
    error: BaseException
    attempts: int
    first_failure: str
    permanent: bool


@dataclass
class _BatchState:
    offsets: dict[TopicPartition, OffsetAndMetadata] = field(default_factory=dict)
    done_ids: list[str] = field(default_factory=list)
    dedup_records: list[tuple[int, str]] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    processed: int = 0


def backoff_delay(attempt: int, base_s: float, max_s: float) -> float:
    """Exponential backoff: base·2^(attempt-1), capped."""
    return float(min(max_s, base_s * (2 ** max(0, attempt - 1))))


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


class ConsumerRunner:
    """Runs subscriptions in one consumer group, on its own thread or in the calling one."""

    def __init__(
        self,
        settings: KernelSettings,
        group: str,
        subscriptions: Iterable[Subscription[Any]],
        *,
        mode: Mode = Mode.AT_LEAST_ONCE,
        source: str | None = None,
        redis: ResilientRedis | None = None,
        max_poll_records: int | None = None,
        max_poll_interval_ms: int = 300_000,
        session_timeout_ms: int = 10_000,
        poll_timeout_ms: int = 200,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.group = group
        self.mode = mode
        self.source = source or f"/quartet/{settings.service_name}"
        self._subs: dict[str, Subscription[Any]] = {}
        for sub in subscriptions:
            self._subs[sub.topic] = sub
            if sub.retry:
                self._subs[sub.topic + RETRY_SUFFIX] = sub
        self._redis = redis
        # In transactional mode the committed changelog, held in memory per partition, already answers "done
        # before?" exactly; a Redis lookup there would only add two round trips per batch.
        self._dedup_cache = (
            DedupCache(redis, group, settings.idempotency_ttl_s)
            if redis is not None and mode is Mode.AT_LEAST_ONCE
            else None
        )
        # A batch costs a poll, a Redis lookup and record, and a synchronous commit (four broker round trips for a
        # transaction) whatever its size; at kafka-python's default of 500 records those cost the at-least-once
        # runner 0.76 of a raw loop's rate, at 2000 0.90 (bench). A stop still ends a batch after its current
        # record, so larger batches do not lengthen a drain. Slow handlers (the job workers) pass their own.
        self._max_poll_records = max_poll_records or MAX_POLL_RECORDS
        self._max_poll_interval_ms = max_poll_interval_ms
        self._session_timeout_ms = session_timeout_ms
        self._poll_timeout_ms = poll_timeout_ms
        self._sleep = sleep
        self.stopping = threading.Event()
        self.started = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: KafkaConsumer | None = None
        self._producer: Producer | None = None
        self._seen: dict[TopicPartition, set[str]] = {}
        self._paused_until: dict[TopicPartition, float] = {}
        self._last_lag = 0.0
        self._routes: dict[str, _Route] = {}
        self._transactional = mode is Mode.TRANSACTIONAL
        self._max_inline_attempts = settings.max_inline_attempts
        # What the handler being run emitted, sent once it returns; one list and one bound method for the
        # runner's life rather than a new pair per record.
        self._outputs: list[tuple[str, tuple[bytes | None, bytes, list[tuple[str, bytes]]]]] = []
        self._max_event_bytes = settings.max_event_bytes
        self._collect = self._collect_output
        self._deferred: list[Callable[[], None]] = []
        self._defer = self._deferred.append
        self._failed_batches = 0
        self.error: BaseException | None = None
        self._stall_timeout_s = settings.consumer_stall_timeout_s
        # When the runner's thread entered the Kafka call it is in (None outside one); read by the watchdog.
        self._call_since: float | None = None
        self._stalled = threading.Event()
        self.stalls = 0
        self.join_restarts = 0
        # Which consumer's rebalance callbacks count: a dropped one's are ignored.
        self._epoch = 0

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> threading.Thread:
        """Run in a daemon thread; returns it."""
        self._thread = threading.Thread(target=self._run_logged, name=f"consumer-{self.group}", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout_s: float | None = None) -> None:
        """Ask the loop to finish its current record and exit; wait for the thread when it has one."""
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s if timeout_s is not None else self.settings.shutdown_grace_s)

    def install_signal_handlers(self) -> None:
        """Stop cleanly on SIGTERM and SIGINT (main thread only)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())

    def _run_logged(self) -> None:
        try:
            self.run()
        except BaseException as exc:
            self.error = exc
            log.exception("consumer runner crashed", extra={"group": self.group})
            raise

    def run(self) -> None:
        """The poll loop; returns after stop() or SIGTERM, having committed or aborted its last batch."""
        self._prepare_topics()
        self._producer = self._make_producer()
        finished = threading.Event()
        watchdog = threading.Thread(
            target=self._watch_stalls,
            args=(threading.get_ident(), finished),
            name=f"consumer-watchdog-{self.group}",
            daemon=True,
        )
        watchdog.start()
        try:
            while not self.stopping.is_set():
                try:
                    self._poll_loop(self._subscribe())
                except KafkaError:
                    if not self._stalled.is_set():
                        raise
                if not self._stalled.is_set():
                    break
                # What the dropped consumer had not committed is consumed again by the new one (and its ids
                # already done are skipped), so rebuilding loses nothing and doubles nothing.
                self._stalled.clear()
                self._drop()
        finally:
            finished.set()
            self._close()

    def _new_consumer(self) -> KafkaConsumer:
        return kafka_consumer(
            self.settings,
            group_id=self.group,
            auto_offset_reset="earliest",
            max_poll_records=self._max_poll_records,
            max_poll_interval_ms=self._max_poll_interval_ms,
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=max(1000, self._session_timeout_ms // 4),
            request_timeout_ms=max(self.settings.request_timeout_ms, self._session_timeout_ms + 5000),
        )

    def _subscribe(self) -> KafkaConsumer:
        consumer = self._new_consumer()
        self._consumer = consumer
        self._epoch += 1
        self._await_metadata(consumer)
        consumer.subscribe(sorted(self._subs), listener=_Listener(self, self._epoch))
        self.started.set()
        return consumer

    def _poll_loop(self, consumer: KafkaConsumer) -> None:
        stuck_since: float | None = None
        while not self.stopping.is_set() and not self._stalled.is_set():
            self._resume_due()
            with self._kafka_call():
                batch = consumer.poll(timeout_ms=self._poll_timeout_ms)
            if batch:
                self._process_batch(batch)
            self._report_lag()
            stuck_since = self._unstick_join(consumer, stuck_since)

    def _unstick_join(self, consumer: KafkaConsumer, stuck_since: float | None) -> float | None:
        """Ask for a rejoin when kafka-python 3.0 has dropped a finished join; when that state was first seen."""
        if not _join_dropped(consumer):
            return None
        now = time.monotonic()
        if stuck_since is None:
            return now
        # The client passes through this state for an instant when a join succeeds; held for seconds, it is stuck.
        if now - stuck_since < JOIN_STUCK_S:
            return stuck_since
        log.warning("the group join was dropped half-way; asking to rejoin", extra={"group": self.group})
        self.join_restarts += 1
        CONSUMER_STALLS.labels(self.group, "join").inc()
        consumer._coordinator.request_rejoin()
        return None

    @contextlib.contextmanager
    def _kafka_call(self) -> Iterator[None]:
        """Mark a client call the watchdog may break if it never returns."""
        self._call_since = time.monotonic()
        try:
            yield
        finally:
            self._call_since = None

    def _watch_stalls(self, runner_thread: int, finished: threading.Event) -> None:
        """Break a Kafka call of the runner's thread that has not returned within the stall timeout."""
        while not finished.wait(min(1.0, self._stall_timeout_s / 4)):
            since, consumer = self._call_since, self._consumer
            if since is None or consumer is None or self._stalled.is_set():
                continue
            waited = time.monotonic() - since
            if waited < self._stall_timeout_s:
                continue
            frame = sys._current_frames().get(runner_thread)
            stack = "".join(traceback.format_stack(frame)) if frame is not None else "(no frame)"
            log.error(
                "a Kafka call has not returned; rebuilding the consumer",
                extra={"group": self.group, "waited_s": round(waited, 1), "stack": stack},
            )
            self.stalls += 1
            CONSUMER_STALLS.labels(self.group, "call").inc()
            self._stalled.set()
            _break_waits(consumer)

    def _drop(self) -> None:
        """Close a consumer whose client stalled, giving up after a few seconds (its member then expires)."""
        consumer, self._consumer = self._consumer, None
        # Its listener may still fire while it closes; from now on its calls are ignored (see _Listener).
        self._epoch += 1
        if consumer is not None:
            closer = threading.Thread(target=lambda: consumer.close(autocommit=False), daemon=True)
            closer.start()
            closer.join(5.0)
        self._paused_until.clear()
        self._seen.clear()

    def _await_metadata(self, consumer: KafkaConsumer) -> None:
        """Wait until the consumer's metadata knows every subscribed topic.

        A group that joins before a brand-new topic's metadata reaches this client is assigned nothing for
        it, and stays so until the next metadata refresh (minutes); waiting here avoids that idle start.
        """
        wait_for_partitions(consumer, sorted(self._subs), 60.0, stop=self.stopping)

    def _close(self) -> None:
        with contextlib.suppress(Exception):
            if self._dedup_cache is not None:
                self._dedup_cache.close()
        with contextlib.suppress(Exception):
            if self._consumer is not None:
                self._consumer.close(autocommit=False)
        with contextlib.suppress(Exception):
            if self._producer is not None:
                self._producer.close(timeout_s=5)

    def _make_producer(self) -> Producer:
        # Everything this producer sends is flushed before the batch commits, so lingering costs no latency;
        # it lets the sender thread wake once per batch instead of contending for the GIL on every record.
        batching = {"linger_ms": BATCH_LINGER_MS, "batch_size": BATCH_BYTES}
        if self.mode is Mode.TRANSACTIONAL:
            producer = Producer(
                self.settings,
                transactional_id=f"{self.group}-{self.settings.instance_id}",
                transaction_timeout_ms=self.settings.transaction_timeout_ms,
                **batching,
            )
            # Fences any earlier incarnation with the same id and aborts its open transaction at once.
            producer.raw.init_transactions()
            return producer
        return Producer(self.settings, **batching)

    def _prepare_topics(self) -> None:
        specs = [TopicSpec(t, "") for t in self._subs]
        specs += [TopicSpec(t + DLQ_SUFFIX, "") for t in self._subs if not t.endswith(RETRY_SUFFIX)]
        ensure_topics(self.settings, specs)
        if self.mode is Mode.TRANSACTIONAL:
            partitions = partition_counts(self.settings, list(self._subs))
            bases = sorted({t.removesuffix(RETRY_SUFFIX) for t in self._subs})
            ensure_topics(
                self.settings,
                [
                    TopicSpec(
                        dedup_topic(b, self.group),
                        f"processed ids of {self.group} on {b} and its retries",
                        partitions=max(n for t, n in partitions.items() if t.removesuffix(RETRY_SUFFIX) == b),
                        retention_ms=self.settings.dedup_retention_ms,
                    )
                    for b in bases
                ],
            )

    # ---- rebalances --------------------------------------------------------------------------------

    def _on_assigned(self, partitions: list[TopicPartition]) -> None:
        if self.mode is Mode.TRANSACTIONAL:
            for tp in {_base(tp) for tp in partitions}:
                self._seen[tp] = self._restore_dedup(tp)
                # Reading a changelog is progress, not a stall of the poll that runs this listener.
                if self._call_since is not None:
                    self._call_since = time.monotonic()
        log.info("partitions assigned", extra={"group": self.group, "partitions": [str(p) for p in partitions]})

    def _on_revoked(self, partitions: list[TopicPartition]) -> None:
        # Each batch commits (or aborts) before the next poll, so nothing is pending here.
        for tp in partitions:
            self._seen.pop(_base(tp), None)
            self._paused_until.pop(tp, None)
        log.info("partitions revoked", extra={"group": self.group, "partitions": [str(p) for p in partitions]})

    def _restore_dedup(self, tp: TopicPartition) -> set[str]:
        """Rebuild a base partition's processed ids (its own and its retries') from the committed changelog."""
        changelog = TopicPartition(dedup_topic(tp.topic, self.group), tp.partition)
        reader = kafka_consumer(self.settings)
        try:
            reader.assign([changelog])
            reader.seek_to_beginning(changelog)
            end = reader.end_offsets([changelog])[changelog]
            ids: set[str] = set()
            while reader.position(changelog) < end:
                for records in reader.poll(timeout_ms=500).values():
                    for r in records:
                        ids.update(i for i in (r.value or b"").decode().split("\n") if i)
            return ids
        finally:
            reader.close()

    # ---- the batch ----------------------------------------------------------------------------------

    def _process_batch(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        error, refused = self._try_batch(batch)
        if error is None:
            self._failed_batches = 0
            return
        records = [(tp, rec) for tp, recs in batch.items() for rec in recs]
        if refused and len(records) > 1:
            # The broker refuses some output for good (too large, invalid): find its record by running each
            # record on its own, so that only that one is dead-lettered and the rest go through.
            log.warning("an output was refused; processing the batch record by record", extra={"group": self.group})
            for tp, rec in records:
                if self.stopping.is_set():
                    return
                if not self._process_alone(tp, rec):
                    break
            else:
                return
        elif refused:
            tp, rec = records[0]
            if self._dead_letter_alone(tp, rec, error):
                return
        self._failed_batches += 1
        delay = self._backoff(self._failed_batches)
        log.error(
            "batch failed; it will be consumed again",
            extra={"group": self.group, "failures_in_a_row": self._failed_batches, "retry_in_s": delay},
        )
        # A broker that is away would otherwise make this a busy loop of doomed batches.
        self.stopping.wait(delay)

    def _process_alone(self, tp: TopicPartition, rec: ConsumerRecord) -> bool:
        """One record as its own batch (dead-lettered if the broker refuses its output); False on a failure."""
        assert self._consumer is not None
        error, refused = self._try_batch({tp: [rec]})
        if error is None:
            # The batch was rewound when it failed; move past what is now done so the next poll skips it.
            self._consumer.seek(tp, rec.offset + 1)
            return True
        return refused and self._dead_letter_alone(tp, rec, error)

    def _try_batch(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> tuple[KafkaError | None, bool]:
        """Process and commit a batch; on a Kafka error, rewind it and return the error and whether the broker
        refused an output for good (as opposed to being unreachable)."""
        assert self._producer is not None and self._consumer is not None
        txn = self.mode is Mode.TRANSACTIONAL
        state = _BatchState()
        # A failure left over from sends outside any batch (none are expected) must not fail this one.
        self._producer.take_failures()
        try:
            if txn:
                self._producer.raw.begin_transaction()
            # One Redis round trip for the whole batch, whatever the number of partitions in it, sent before the
            # decoding so that Redis answers while this thread decodes.
            answer = self._dedup_cache.lookup(_ids_of(batch)) if self._dedup_cache is not None else set
            decoded = {tp: _decode_all(records) for tp, records in batch.items()}
            known = answer()
            for tp, rows in decoded.items():
                self._process_partition(tp, rows, known, state)
            self._commit(state, txn)
            self._run_after_commit(state)
        except Aborted:
            self._abandon(batch, state, txn, keep_finished=True)
            return None, False
        except KafkaError as exc:
            _, first = self._producer.take_failures()
            log.warning("batch failed", extra={"group": self.group, "error": f"{type(exc).__name__}: {exc}"})
            # In a transaction the error raised may be the producer's generic "abortable" one; the refusal
            # itself is the first failure it recorded, and that is what a dead letter should name.
            refusal = exc if _refused(exc) else first if isinstance(first, KafkaError) and _refused(first) else None
            # After splitting a refused batch kafka-python's sequence numbers for the partition are off, and
            # the next transaction would fail on them: the next one starts from a fresh producer.
            self._abandon(batch, state, txn, keep_finished=False, fresh_producer=refusal is not None)
            return (exc, False) if refusal is None else (refusal, True)
        return None, False

    def _dead_letter_alone(self, tp: TopicPartition, rec: ConsumerRecord, error: BaseException) -> bool:
        """Dead-letter one record whose output the broker refuses, and commit past it; False if that fails.

        Should the hook's own output be refused too, the dead letter goes alone rather than not at all.
        """
        return self._try_dead_letter(tp, rec, error, finalize=True) or self._try_dead_letter(
            tp, rec, error, finalize=False
        )

    def _try_dead_letter(self, tp: TopicPartition, rec: ConsumerRecord, error: BaseException, finalize: bool) -> bool:
        assert self._producer is not None and self._consumer is not None
        txn = self.mode is Mode.TRANSACTIONAL
        state = _BatchState(offsets={tp: OffsetAndMetadata(rec.offset + 1, "", -1)})
        self._producer.take_failures()
        try:
            if txn:
                self._producer.raw.begin_transaction()
            base_topic = tp.topic.removesuffix(RETRY_SUFFIX)
            self._dead_letter(rec, base_topic, error, attempts=1, finalize=finalize, state=state)
            self._commit(state, txn)
        except KafkaError:
            log.exception("could not dead-letter a record whose output was refused", extra={"group": self.group})
            # A refusal leaves kafka-python's sequence numbers off, as in _try_batch: start from a fresh producer.
            self._abandon({tp: [rec]}, _BatchState(), txn, keep_finished=False, fresh_producer=True)
            return False
        self._consumer.seek(tp, rec.offset + 1)
        return True

    def _commit(self, state: _BatchState, txn: bool) -> None:
        """Make the batch's work final: its transaction, or its flushed sends and then its offsets."""
        assert self._producer is not None and self._consumer is not None
        if txn:
            self._commit_transaction(state)
            return
        # Raises ProduceFailed if any output, retry or dead letter of the batch was not delivered.
        self._producer.flush()
        if self._dedup_cache is not None and state.done_ids:
            # Every effect is durable now (the handlers' own and the outputs just flushed), so Redis may know;
            # it records them while the offsets commit, and its reply is read before the next batch's lookup.
            self._dedup_cache.remember(state.done_ids)
        if state.offsets:
            with self._kafka_call():
                self._consumer.commit(offsets=state.offsets)

    def _commit_transaction(self, state: _BatchState) -> None:
        assert self._producer is not None and self._consumer is not None
        raw = self._producer.raw
        grouped = _group_ids(state.dedup_records)
        for base, ids in grouped.items():
            # One changelog record per partition per transaction: half the sends of one per id.
            value = "\n".join(sorted(ids)).encode()
            self._producer.send_raw(dedup_topic(base.topic, self.group), None, value, [], partition=base.partition)
        # commit_transaction would flush too; flushing here first names a refused record as the cause.
        self._producer.flush()
        if state.offsets:
            membership = self._consumer.group_metadata()
            # A member the group dropped (a frozen "zombie") has its generation reset to -1 and no member id,
            # and the broker does not fence offsets sent that way: they could move the group's offsets back
            # and commit a second output. Abort instead; the partitions belong to another member now.
            if membership.generation_id < 0 or not membership.member_id:
                raise CommitFailedError("this member left the group; its partitions belong to another member")
            raw.send_offsets_to_transaction(state.offsets, membership)
        raw.commit_transaction()
        TRANSACTIONS.labels(self.group, "committed").inc()
        for tp_key, ids in grouped.items():
            seen = self._seen.get(tp_key)
            if seen is not None:
                seen.update(ids)

    def _replace_transactional_producer(self) -> None:
        """Swap the transactional producer for a fresh one (its init fences the old and aborts what it left)."""
        old = self._producer
        try:
            self._producer = self._make_producer()
        except KafkaError:
            log.exception("could not replace the transactional producer; keeping the old one for now")
            return
        if old is not None:
            with contextlib.suppress(Exception):
                old.raw.close(timeout=0)
        log.warning("transactional producer replaced", extra={"group": self.group})

    def _abandon(
        self,
        batch: dict[TopicPartition, list[ConsumerRecord]],
        state: _BatchState,
        txn: bool,
        *,
        keep_finished: bool,
        fresh_producer: bool = False,
    ) -> None:
        """Throw the batch's work away and rewind, so every record in it not known to be done is consumed again.

        `keep_finished` (a stop in mid-batch) commits the records that did finish, if their outputs are
        confirmed delivered; after a Kafka error nothing in the batch is trusted and all of it is redelivered.
        `fresh_producer` replaces a transactional producer after the abort.
        """
        assert self._producer is not None and self._consumer is not None
        committed_here = False
        if txn:
            try:
                self._producer.raw.abort_transaction()
            except KafkaError:
                # kafka-python can leave a transactional producer in a state it cannot leave by itself (after
                # splitting a refused batch, for one); a fresh one with the same id aborts what is open.
                fresh_producer = True
            if fresh_producer:
                self._replace_transactional_producer()
            TRANSACTIONS.labels(self.group, "aborted").inc()
        elif keep_finished and state.offsets and not self.stopping.is_set():
            with contextlib.suppress(KafkaError):
                self._commit(state, txn=False)
                committed_here = True
        if committed_here:
            self._run_after_commit(state)
        self._producer.take_failures()
        for tp, records in batch.items():
            committed = state.offsets.get(tp)
            restart = committed.offset if (committed is not None and committed_here) else records[0].offset
            with contextlib.suppress(Exception):
                self._consumer.seek(tp, restart)

    def _process_partition(
        self, tp: TopicPartition, decoded: list[_Decoded], known: set[str], state: _BatchState
    ) -> None:
        route = self._route(tp.topic)
        CONSUMED.labels(self.group, tp.topic).inc(len(decoded))
        transactional = self._transactional
        seen = self._seen.get(_base(tp)) if transactional else None
        seen_here: set[str] = set()
        is_retry = route.is_retry
        next_offset: int | None = None
        try:
            for rec, env, err in decoded:
                if state.processed and self.stopping.is_set():
                    # Leave the rest of the batch for whoever owns the partition next; what finished commits.
                    break
                if is_retry and self._defer_if_early(tp, rec):
                    break
                # An undecodable record's id is its ce_id header: one already answered for is a duplicate too.
                message_id = env.id if env is not None else _header(rec, "ce_id")
                if message_id is not None and (
                    message_id in known or message_id in seen_here or (seen is not None and message_id in seen)
                ):
                    DUPLICATES.labels(self.group, route.base_topic).inc()
                elif env is None:
                    error = err or EnvelopeError("undecodable")
                    self._dead_letter(rec, route.base_topic, error, attempts=1, state=state)
                else:
                    self._handle(route, tp, rec, env, state)
                    seen_here.add(env.id)
                next_offset = rec.offset + 1
                state.processed += 1
        finally:
            # Whatever ends the loop, the offset to commit is the one after the last record finished.
            if next_offset is not None:
                state.offsets[tp] = OffsetAndMetadata(next_offset, "", -1)

    def _route(self, topic: str) -> _Route:
        route = self._routes.get(topic)
        if route is None:
            base_topic = topic.removesuffix(RETRY_SUFFIX)
            route = self._routes[topic] = _Route(
                self._subs[topic], base_topic, topic != base_topic, HANDLER_SECONDS.series(self.group, topic)
            )
        return route

    def _defer_if_early(self, tp: TopicPartition, rec: ConsumerRecord) -> bool:
        """Pause a retry partition until its head record is due, so delays never block other topics."""
        assert self._consumer is not None
        due_ms = int(header_map(rec.headers).get(H_NOT_BEFORE, b"0") or 0)
        wait = due_ms / 1000 - time.time()
        if wait <= 0:
            return False
        self._consumer.seek(tp, rec.offset)
        self._consumer.pause(tp)
        self._paused_until[tp] = time.monotonic() + wait
        return True

    def _resume_due(self) -> None:
        if not self._paused_until or self._consumer is None:
            return
        now = time.monotonic()
        due = [tp for tp, at in self._paused_until.items() if at <= now]
        for tp in due:
            del self._paused_until[tp]
        if due:
            self._consumer.resume(*due)

    def _handle(
        self, route: _Route, tp: TopicPartition, rec: ConsumerRecord, env: Envelope, state: _BatchState
    ) -> None:
        # Only the retry topic carries the kernel's attempt headers (a replay strips them).
        prior_attempts, first_failure = 0, None
        if route.is_retry:
            headers = header_map(rec.headers)
            prior_attempts = int(headers.get(H_ATTEMPT, b"0") or 0)
            first_failure = headers.get(H_FIRST_FAILURE, b"").decode() or None
        try:
            message = env.parse(route.sub.model)
        except (SchemaError, EnvelopeError) as exc:
            self._dead_letter(rec, route.base_topic, exc, prior_attempts + 1, first_failure, state=state)
            return
        failure = self._attempt(route, message, rec, env, prior_attempts, first_failure)
        if failure is None:
            state.done_ids.append(env.id)
            state.after_commit.extend(self._deferred)
            self._deferred.clear()
            if self._transactional:
                self._record_dedup(_base(tp), env.id, state)
            return
        if failure.permanent or failure.attempts >= self.settings.max_attempts or not route.sub.retry:
            self._dead_letter(
                rec, route.base_topic, failure.error, failure.attempts, failure.first_failure, state=state
            )
        else:
            self._schedule_retry(rec, route.base_topic, failure)

    def _attempt(
        self,
        route: _Route,
        message: BaseModel,
        rec: ConsumerRecord,
        env: Envelope,
        prior_attempts: int,
        first_failure: str | None,
    ) -> _Failure | None:
        assert self._producer is not None
        attempt = prior_attempts
        outputs = self._outputs
        handler, timings = route.sub.handler, route.timings
        inline_left = self._max_inline_attempts
        while True:
            attempt += 1
            inline_left -= 1
            ctx = Context(env, rec, attempt, self.stopping, self._collect, self._defer)
            token = bind_log_context(env.subject or env.id, env.traceparent)
            retry_in: float | None = None
            started = time.perf_counter()
            try:
                handler(message, ctx)
            except Aborted:
                self._discard_attempt()
                raise
            except (PermanentError, EventTooLarge) as exc:
                self._discard_attempt()
                return _Failure(exc, attempt, first_failure or _now_iso(), permanent=True)
            except Exception as exc:
                # A failed attempt's outputs are thrown away with it.
                self._discard_attempt()
                first_failure = first_failure or _now_iso()
                RETRIES.labels(self.group, rec.topic).inc()
                log.warning(
                    "handler failed",
                    extra={"group": self.group, "topic": rec.topic, "attempt": attempt, "error": repr(exc)},
                )
                if not inline_left or attempt >= self.settings.max_attempts or self.stopping.is_set():
                    return _Failure(exc, attempt, first_failure, permanent=False)
                retry_in = self._backoff(attempt)
            finally:
                timings.observe(time.perf_counter() - started)
                reset_log_context(token)
            if retry_in is not None:
                # After the latency is observed: the backoff is not the handler's time.
                self._sleep(retry_in)
                continue
            if outputs:
                try:
                    for topic, (key, value, headers) in outputs:
                        self._producer.send_raw(topic, key, value, headers)
                finally:
                    # Sent or not, they belong to this record: none may go out with the next one.
                    outputs.clear()
            return None

    def _collect_output(self, topic: str, envelope: Envelope) -> None:
        # Encoded and measured as it is emitted, so an oversized event fails the handler that made it (and
        # dead-letters its input with EventTooLarge) rather than the broker refusing it after the fact.
        self._outputs.append((topic, envelope.to_bounded_kafka(self._max_event_bytes)))

    def _discard_attempt(self) -> None:
        self._outputs.clear()
        self._deferred.clear()

    def _run_after_commit(self, state: _BatchState) -> None:
        """The committed batch's deferred callbacks; one failing does not stop the others."""
        callbacks, state.after_commit = state.after_commit, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("an after-commit callback failed", extra={"group": self.group})

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, self.settings.retry_backoff_base_s, self.settings.retry_backoff_max_s)

    def _record_dedup(self, tp: TopicPartition, message_id: str, state: _BatchState) -> None:
        state.dedup_records.append((tp.partition, f"{tp.topic}\x00{message_id}"))

    def _schedule_retry(self, rec: ConsumerRecord, base_topic: str, failure: _Failure) -> None:
        assert self._producer is not None
        delay = self._backoff(failure.attempts)
        headers = _strip(rec.headers) + [
            (H_ATTEMPT, str(failure.attempts).encode()),
            (H_NOT_BEFORE, str(int((time.time() + delay) * 1000)).encode()),
            (H_FIRST_FAILURE, failure.first_failure.encode()),
            (H_ERROR_TYPE, type(failure.error).__name__.encode()),
            (H_ERROR_MESSAGE, str(failure.error)[:2000].encode()),
        ]
        self._producer.send_raw(base_topic + RETRY_SUFFIX, rec.key, rec.value, headers)

    def _dead_letter(
        self,
        rec: ConsumerRecord,
        base_topic: str,
        error: BaseException,
        attempts: int,
        first_failure: str | None = None,
        *,
        finalize: bool = True,
        state: _BatchState | None = None,
    ) -> None:
        assert self._producer is not None
        now = _now_iso()
        headers = _strip(rec.headers) + [
            (H_ERROR_TYPE, type(error).__name__.encode()),
            (H_ERROR_MESSAGE, str(error)[:4000].encode("utf-8", "replace")),
            (H_ATTEMPTS, str(attempts).encode()),
            (H_ORIGINAL_TOPIC, base_topic.encode()),
            (H_ORIGINAL_PARTITION, str(rec.partition).encode()),
            (H_ORIGINAL_OFFSET, str(rec.offset).encode()),
            (H_DLQ_FIRST, (first_failure or now).encode()),
            (H_DLQ_LAST, now.encode()),
            (H_GROUP, self.group.encode()),
        ]
        if rec.topic != base_topic:
            headers.append(("dlq_via_topic", rec.topic.encode()))
        self._producer.send_raw(base_topic + DLQ_SUFFIX, rec.key, rec.value, headers)
        letter = DeadLetter(rec, error, attempts)
        answered = finalize and self._finalize(letter, base_topic)
        if answered and state is not None and self._transactional and letter.event_id is not None:
            # Its answer is its one output: a replay or a duplicate of the record is skipped like a done one.
            self._record_dedup(TopicPartition(base_topic, rec.partition), letter.event_id, state)
        DEAD_LETTERS.labels(self.group, base_topic, type(error).__name__).inc()
        log.warning(
            "dead-lettered",
            extra={
                "group": self.group,
                "topic": base_topic,
                "offset": rec.offset,
                "error": f"{type(error).__name__}: {error}",
            },
        )

    def _finalize(self, letter: DeadLetter, base_topic: str) -> bool:
        """Run the subscription's dead-letter hook and send what it emits beside the dead letter; whether it did."""
        assert self._producer is not None
        sub = self._subs.get(base_topic)
        hook = sub.on_dead_letter if sub is not None else None
        if hook is None:
            return False
        emitted: list[tuple[str, Envelope]] = []
        try:
            hook(letter, lambda topic, envelope: emitted.append((topic, envelope)))
            for topic, envelope in emitted:
                self._producer.send(topic, envelope)
        except Exception:
            # The dead letter still goes: it is the record of what happened, the hook's answer a courtesy.
            log.exception("a dead-letter hook failed", extra={"group": self.group, "topic": base_topic})
            return False
        return bool(emitted)

    def _report_lag(self) -> None:
        now = time.monotonic()
        if self._consumer is None or now - self._last_lag < 1.0:
            return
        self._last_lag = now
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            if high is None:
                continue
            with contextlib.suppress(Exception), self._kafka_call():
                lag = max(0, high - self._consumer.position(tp))
                CONSUMER_LAG.labels(self.group, tp.topic, str(tp.partition)).set(lag)


def _join_dropped(consumer: KafkaConsumer) -> bool:
    """Whether the consumer's group membership is mid-rebalance with nothing left to drive the rebalance on.

    kafka-python 3.0.12 can finish a JoinGroup/SyncGroup round while no poll is awaiting it and then forget it:
    the member stays "rebalancing" with heartbeats off and no rejoin pending, is expired by the broker, and
    never fetches again (seen under CPU load, right after the leader's rejoin for a newly seen topic). During
    any real rebalance a rejoin stays pending until the join succeeds, so this state is never a healthy one.
    """
    coordinator = getattr(consumer, "_coordinator", None)
    return (
        coordinator is not None
        and getattr(coordinator, "state", None) == MemberState.REBALANCING
        and not coordinator.need_rejoin()
    )


def _break_waits(consumer: KafkaConsumer) -> None:
    """Fail every call waiting on the consumer's I/O loop (they raise KafkaConnectionError) by stopping it."""
    # kafka-python 3.0 runs each client's network on an I/O thread and blocks callers on an event with no
    # timeout of its own; stopping that loop is the one way it offers to release them.
    net = getattr(consumer, "_net", None)
    stop = getattr(net, "stop", None)
    if stop is None:
        log.error("cannot break the stalled call: this kafka-python has no I/O loop to stop")
        return
    with contextlib.suppress(Exception):
        stop(timeout_ms=1000)


_Decoded = tuple[ConsumerRecord, Envelope | None, Exception | None]

# Errors about a record itself, which no retry changes: its input is dead-lettered instead of retried forever.
# (An authorisation failure is not among them: dead-lettering every input for a wrong ACL would be worse.)
_REFUSED = (MessageSizeTooLargeError, InvalidRecordError, CorruptRecordError)


def _refused(exc: BaseException | None) -> bool:
    """Whether a failure (or what caused it) is the broker refusing a record for good."""
    while exc is not None:
        if isinstance(exc, _REFUSED):
            return True
        exc = exc.__cause__
    return False


def _decode_all(records: list[ConsumerRecord]) -> list[_Decoded]:
    """Each record with its envelope (data left as JSON for `parse`), or with the EnvelopeError that will
    dead-letter it."""
    out: list[_Decoded] = []
    for rec in records:
        try:
            out.append((rec, decode(rec.key, rec.value, rec.headers, lazy_data=True), None))
        except EnvelopeError as exc:
            out.append((rec, None, exc))
    return out


def _ids_of(batch: dict[TopicPartition, list[ConsumerRecord]]) -> list[str]:
    """The event ids of a batch, read from the headers alone (a record without one is left out)."""
    return [i for records in batch.values() for rec in records if (i := _header(rec, "ce_id")) is not None]


def _header(rec: ConsumerRecord, wanted: str) -> str | None:
    """The first header `wanted` of a record as text, None when absent or empty."""
    for name, value in rec.headers or ():
        if name == wanted:
            return value.decode("utf-8", "replace") if value else None
    return None


def _base(tp: TopicPartition) -> TopicPartition:
    return TopicPartition(tp.topic.removesuffix(RETRY_SUFFIX), tp.partition)


def _strip(headers: list[tuple[str, bytes | None]] | None) -> list[tuple[str, bytes]]:
    return [(k, v or b"") for k, v in (headers or []) if k not in KERNEL_HEADERS and k != "dlq_via_topic"]


def original_headers(headers: list[tuple[str, bytes | None]] | None) -> list[tuple[str, bytes]]:
    """A record's headers without anything the kernel added (for replays)."""
    return _strip(headers)


def _group_ids(records: list[tuple[int, str]]) -> dict[TopicPartition, set[str]]:
    out: dict[TopicPartition, set[str]] = defaultdict(set)
    for partition, tagged in records:
        topic, message_id = tagged.split("\x00", 1)
        out[TopicPartition(topic, partition)].add(message_id)
    return out


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ConsumerRunner, epoch: int) -> None:
        self._runner = runner
        self._epoch = epoch

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if self._runner._epoch == self._epoch:
            self._runner._on_revoked(list(revoked))

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        if self._runner._epoch == self._epoch:
            self._runner._on_assigned(list(assigned))


__all__ = [
    "DEDUP_SUFFIX",
    "Aborted",
    "ConsumerRunner",
    "Context",
    "DeadLetter",
    "DeadLetterHook",
    "Emit",
    "Mode",
    "PermanentError",
    "Subscription",
    "backoff_delay",
    "original_headers",
]
