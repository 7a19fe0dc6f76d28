"""The idempotent producer: acks=all, a confirmed send for APIs, flush on close."""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError, UnknownError
from kafka.producer.future import FutureRecordMetadata
from quartet_contracts.envelope import Envelope

from quartet_shared.clients import KAFKA, KafkaClients
from quartet_shared.metrics import PRODUCE_ERRORS, PRODUCED
from quartet_shared.settings import KernelSettings
from quartet_shared.tracing import TRACING, producing

log = logging.getLogger(__name__)

_FLUSH_ATTEMPTS = 10


class ProduceFailed(KafkaError):  # type: ignore[misc]
    """Records queued since the last flush were not delivered; the first failure is the cause."""


class EventProducer(Protocol):
    """What the job API and the worker need of a producer (`Producer`, or a recording fake in tests)."""

    def send(self, topic: str, envelope: Envelope, *, partition: int | None = None) -> object:
        """Queue an envelope; raises EventTooLarge over the bound."""
        ...

    def send_confirmed(self, topic: str, envelope: Envelope, timeout_s: float | None = None) -> Any:
        """Send and wait for the broker's acknowledgement; raises if it does not come."""
        ...

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush and close."""
        ...


class Producer:
    """Sends envelopes with an idempotent, acks=all KafkaProducer.

    `flush` either confirms that every record queued since the last flush was delivered or raises
    `ProduceFailed`: kafka-python's own flush returns quietly after a record has failed (its delivery timeout
    passed, or the broker refused it), and a caller that then commits its input offsets would lose the output.
    """

    def __init__(self, settings: KernelSettings, *, clients: KafkaClients = KAFKA, **overrides: Any) -> None:
        self._settings, self._overrides, self._clients = settings, overrides, clients
        self._max_event_bytes = settings.max_event_bytes
        self._transactional = bool(overrides.get("transactional_id"))
        self._producer = clients.producer(settings, **overrides)
        self._lock = threading.Lock()
        self._failures = 0
        self._first_failure: BaseException | None = None
        self._broken = False
        self._queued = 0
        self._per_topic: dict[str, tuple[Any, Callable[[BaseException], None]]] = {}

    @property
    def raw(self) -> KafkaProducer:
        """The underlying KafkaProducer (for transactions)."""
        return self._producer

    def _live(self) -> KafkaProducer:
        # kafka-python's idempotent producer turns fatal on any non-retriable error (a record the broker
        # refuses as too large, say) and then fails every later send; a fresh one, with a fresh producer id,
        # is how to carry on. A transactional producer recovers by aborting instead, so it is left alone.
        if self._broken and not self._transactional:
            old, self._producer, self._broken = (
                self._producer,
                self._clients.producer(self._settings, **self._overrides),
                False,
            )
            log.warning("producer replaced after a failed delivery")
            close_kafka_producer(old, 0)
        return self._producer

    def send(self, topic: str, envelope: Envelope, *, partition: int | None = None) -> FutureRecordMetadata:
        """Queue an envelope; the future resolves when the broker has it. Raises EventTooLarge over the bound."""
        if TRACING.on:
            with producing(topic, envelope) as traced:
                return self._send(topic, traced, partition)
        return self._send(topic, envelope, partition)

    def _send(self, topic: str, envelope: Envelope, partition: int | None) -> FutureRecordMetadata:
        key, value, headers = envelope.to_bounded_kafka(self._max_event_bytes)
        return self.send_raw(topic, key, value, headers, partition=partition)

    def send_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
        *,
        partition: int | None = None,
    ) -> FutureRecordMetadata:
        """Queue an already-encoded record (dead letters and replays keep their bytes as they were)."""
        future = self._live().send(topic, key=key, value=value, headers=headers, partition=partition)
        per_topic = self._per_topic.get(topic) or self._topic(topic)
        # Counted when queued, not per acknowledgement: a success callback per record runs on the producer's
        # I/O thread and cost about a tenth of the producer's throughput. Failures are counted apart.
        per_topic[0].inc()
        self._queued += 1
        future.add_errback(per_topic[1])
        return future

    def _topic(self, topic: str) -> tuple[Any, Callable[[BaseException], None]]:
        # The topic's counter child and errback, made once: resolving a label takes a lock and a lookup, and a
        # fresh partial per record is an object for the collector to trace until its batch is acknowledged.
        made = (PRODUCED.labels(topic), functools.partial(self._failed, topic))
        return self._per_topic.setdefault(topic, made)

    def send_confirmed(self, topic: str, envelope: Envelope, timeout_s: float | None = None) -> Any:
        """Send and wait for the broker's acks=all acknowledgement; raises if it does not come."""
        if TRACING.on:
            # The span lasts until the acknowledgement: what an API's caller waits for.
            with producing(topic, envelope) as traced:
                return self._send(topic, traced, None).get(timeout=timeout_s)
        return self._send(topic, envelope, None).get(timeout=timeout_s)

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until everything queued is acknowledged; raise ProduceFailed if any of it failed."""
        # The runner flushes after every batch, most of which send nothing: no need to wake the I/O thread.
        if self._queued or self._transactional:
            # Reset before flushing: a send racing this flush then counts towards the next one.
            self._queued = 0
            for attempt in range(_FLUSH_ATTEMPTS):
                try:
                    self._producer.flush(timeout=timeout_s)
                    break
                except UnknownError:
                    # kafka-python splits a batch the broker finds too large and re-queues its parts, but its
                    # flush then trips over the old batch's future, which is never completed; flushing again
                    # waits for the parts, whose outcome (often the same refusal) is then reported below.
                    if attempt == _FLUSH_ATTEMPTS - 1:
                        raise
        failures, first = self.take_failures()
        if first is not None:
            raise ProduceFailed(
                f"{failures} record(s) not delivered; the first: {type(first).__name__}: {first}"
            ) from first

    def take_failures(self) -> tuple[int, BaseException | None]:
        """How many sends failed since the last flush, and the first failure; the count starts again."""
        with self._lock:
            failures, first = self._failures, self._first_failure
            self._failures, self._first_failure = 0, None
        return failures, first

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush and close; a failed delivery is logged, since there is nobody left to raise it to."""
        try:
            self.flush(timeout_s=timeout_s)
        except KafkaError as exc:
            log.error("records were not delivered before close", extra={"error": str(exc)})
        finally:
            close_kafka_producer(self._producer, timeout_s)

    def _failed(self, topic: str, exc: BaseException) -> None:
        PRODUCE_ERRORS.labels(topic).inc()
        with self._lock:
            self._failures += 1
            self._broken = True
            if self._first_failure is None:
                self._first_failure = exc


def close_kafka_producer(producer: KafkaProducer, timeout_s: float) -> None:
    """Close a KafkaProducer within about `timeout_s`, failing whatever it still holds; never raises a timeout."""
    try:
        producer.close(timeout=timeout_s)
    except KafkaTimeoutError:
        # kafka-python's close flushes first and raises when records are still pending, before it stops its
        # I/O thread, which then retries them until their delivery timeout with nobody left to care. Java's
        # close force-closes instead: do the same, so the pending futures fail and a second close finishes.
        sender = producer._sender
        sender.force_close()
        sender.join(max(timeout_s, 1.0))
        producer.close(timeout=0)


class Stopped(Exception):
    """Told to stop before the transactional producer was ready."""


def open_transactional(make: Callable[[], Producer], stopping: threading.Event | None = None) -> Producer:
    """A transactional producer from `make`, initialised (fencing any earlier incarnation of its transactional
    id and aborting what that left open); closed again if the initialisation fails or `stopping` is set first.

    kafka-python blocks in init_transactions for up to max_block_ms with no way to interrupt it; it runs on its
    own thread so that a stop (SIGTERM) is honoured at once.
    """
    producer = make()
    finished = threading.Event()
    failure: list[BaseException] = []

    def init() -> None:
        try:
            producer.raw.init_transactions()
        except BaseException as exc:
            failure.append(exc)
        finally:
            finished.set()

    try:
        threading.Thread(target=init, name="init-transactions", daemon=True).start()
        while not finished.wait(0.1):
            if stopping is not None and stopping.is_set():
                raise Stopped("stopped while initialising transactions")
        if failure:
            raise failure[0]
    except BaseException:
        with contextlib.suppress(Exception):
            close_kafka_producer(producer.raw, 0)
        raise
    return producer
