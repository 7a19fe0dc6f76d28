"""Running handlers: each record of a batch decoded, skipped if done, handled, and its outputs sent."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata
from pydantic import BaseModel
from quartet_contracts.envelope import Envelope, EnvelopeError, EventTooLarge, SchemaError, header_map
from quartet_contracts.topics import RETRY_SUFFIX

from quartet_shared.logs import bind_log_context, reset_log_context
from quartet_shared.metrics import CONSUMED, DUPLICATES, HANDLER_SECONDS, RETRIES
from quartet_shared.runner.commit import CommitProtocol
from quartet_shared.runner.failures import Failures, RetryPauses
from quartet_shared.runner.model import (
    H_ATTEMPT,
    H_FIRST_FAILURE,
    Aborted,
    BatchState,
    Context,
    Decoded,
    Failure,
    PermanentError,
    Route,
    Subscription,
    base_partition,
    header,
    now_iso,
)
from quartet_shared.settings import KernelSettings
from quartet_shared.tracing import TRACING, failed, processing, producing

log = logging.getLogger(__name__)


class Dispatcher:
    """Hands each record to its subscription's handler and settles what follows from the outcome."""

    def __init__(
        self,
        settings: KernelSettings,
        group: str,
        subs: dict[str, Subscription[Any]],
        protocol: CommitProtocol,
        failures: Failures,
        stopping: threading.Event,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.group = group
        self._subs = subs
        self._protocol = protocol
        self._failures = failures
        self._stopping = stopping
        self._sleep = sleep
        self.pauses = RetryPauses()
        self._routes: dict[str, Route] = {}
        # What the handler being run emitted, sent once it returns; one list for the runner's life.
        self._outputs: list[tuple[str, tuple[bytes | None, bytes, list[tuple[str, bytes]]]]] = []
        self._deferred: list[Callable[[], None]] = []

    def process_partition(
        self, consumer: KafkaConsumer, tp: TopicPartition, decoded: list[Decoded], known: set[str], state: BatchState
    ) -> None:
        """Handle a partition's records in order, noting in `state` the offset after the last one finished."""
        route = self.route(tp.topic)
        CONSUMED.labels(self.group, tp.topic).inc(len(decoded))
        seen = self._protocol.seen(tp)
        base = base_partition(tp)
        seen_here: set[str] = set()
        next_offset: int | None = None
        # Looked up once per batch: with tracing off, a record pays nothing for it.
        handle = self.handle_traced if TRACING.on else self.handle
        try:
            for rec, env, err in decoded:
                if state.processed and self._stopping.is_set():
                    # Leave the rest of the batch for whoever owns the partition next; what finished commits.
                    break
                if route.is_retry and self.pauses.defer_if_early(consumer, tp, rec):
                    break
                # An undecodable record's id is its ce_id header: one already answered for is a duplicate too.
                message_id = env.id if env is not None else header(rec, "ce_id")
                if message_id is not None and (
                    message_id in known or message_id in seen_here or (seen is not None and message_id in seen)
                ):
                    DUPLICATES.labels(self.group, route.base_topic).inc()
                elif env is None:
                    error = err or EnvelopeError("undecodable")
                    self._failures.dead_letter(rec, route.base_topic, error, attempts=1, state=state)
                else:
                    handle(route, base, rec, env, state)
                    seen_here.add(env.id)
                next_offset = rec.offset + 1
                state.processed += 1
        finally:
            # Whatever ends the loop, the offset to commit is the one after the last record finished.
            if next_offset is not None:
                state.offsets[tp] = OffsetAndMetadata(next_offset, "", -1)

    def route(self, topic: str) -> Route:
        """What the runner needs for each record of `topic`, built once."""
        route = self._routes.get(topic)
        if route is None:
            base_topic = topic.removesuffix(RETRY_SUFFIX)
            route = self._routes[topic] = Route(
                self._subs[topic], base_topic, topic != base_topic, HANDLER_SECONDS.labels(self.group, topic)
            )
        return route

    def handle_traced(
        self, route: Route, base: TopicPartition, rec: ConsumerRecord, env: Envelope, state: BatchState
    ) -> None:
        """`handle` inside the record's consumer span, a child of the span that produced the record."""
        # Its retries and dead letter inside too: a failed job's outcome stays in the job's trace.
        with processing(route.base_topic, self.group, env, rec.partition, rec.offset) as span:
            error = self.handle(route, base, rec, env, state)
            if error is not None:
                failed(span, error)

    def handle(
        self, route: Route, base: TopicPartition, rec: ConsumerRecord, env: Envelope, state: BatchState
    ) -> BaseException | None:
        """Parse and handle one record of base partition `base`, retried or dead-lettered as it turns out; its error."""
        # Only the retry topic carries the kernel's attempt headers (a replay strips them).
        prior_attempts, first_failure = 0, None
        if route.is_retry:
            headers = header_map(rec.headers)
            prior_attempts = int(headers.get(H_ATTEMPT, b"0") or 0)
            first_failure = headers.get(H_FIRST_FAILURE, b"").decode() or None
        try:
            message = env.parse(route.sub.model)
        except (SchemaError, EnvelopeError) as exc:
            self._failures.dead_letter(rec, route.base_topic, exc, prior_attempts + 1, first_failure, state=state)
            return exc
        failure = self._attempt(route, message, rec, env, prior_attempts, first_failure)
        if failure is None:
            self._protocol.done(base, env.id, state)
            state.after_commit.extend(self._deferred)
            self._deferred.clear()
            return None
        self._failures.settle(rec, route.base_topic, failure, route.sub.retry, state)
        return failure.error

    def _attempt(
        self,
        route: Route,
        message: BaseModel,
        rec: ConsumerRecord,
        env: Envelope,
        attempt: int,
        first_failure: str | None,
    ) -> Failure | None:
        """Run the handler, retrying inline while that may help; its failure, or None once its outputs are sent."""
        inline_left = self.settings.max_inline_attempts
        while True:
            attempt += 1
            inline_left -= 1
            ctx = Context(env, rec, attempt, self._stopping, self._collect, self._deferred.append)
            token = bind_log_context(env.subject or env.id, env.traceparent)
            retry_in: float | None = None
            started = time.perf_counter()
            try:
                route.sub.handler(message, ctx)
            except Aborted:
                self._discard_attempt()
                raise
            except (PermanentError, EventTooLarge) as exc:
                self._discard_attempt()
                return Failure(exc, attempt, first_failure or now_iso(), permanent=True)
            except Exception as exc:
                # A failed attempt's outputs are thrown away with it.
                self._discard_attempt()
                first_failure = first_failure or now_iso()
                RETRIES.labels(self.group, rec.topic).inc()
                log.warning(
                    "handler failed",
                    extra={"group": self.group, "topic": rec.topic, "attempt": attempt, "error": repr(exc)},
                )
                retry_in = self._failures.retry_inline_in(attempt, inline_left, self._stopping)
                if retry_in is None:
                    return Failure(exc, attempt, first_failure, permanent=False)
            finally:
                route.timings.observe(time.perf_counter() - started)
                reset_log_context(token)
            if retry_in is not None:
                # After the latency is observed: the backoff is not the handler's time.
                self._sleep(retry_in)
                continue
            self._send_outputs()
            return None

    def _send_outputs(self) -> None:
        if not self._outputs:
            return
        producer = self._protocol.producer
        try:
            for topic, (key, value, headers) in self._outputs:
                producer.send_raw(topic, key, value, headers)
        finally:
            # Sent or not, they belong to this record: none may go out with the next one.
            self._outputs.clear()

    def _collect(self, topic: str, envelope: Envelope) -> None:
        # Encoded and measured as it is emitted, so an oversized event fails the handler that made it (and
        # dead-letters its input with EventTooLarge) rather than the broker refusing it after the fact.
        if TRACING.on:
            with producing(topic, envelope, "create") as traced:
                self._outputs.append((topic, traced.to_bounded_kafka(self.settings.max_event_bytes)))
            return
        self._outputs.append((topic, envelope.to_bounded_kafka(self.settings.max_event_bytes)))

    def _discard_attempt(self) -> None:
        self._outputs.clear()
        self._deferred.clear()

    def run_after_commit(self, state: BatchState) -> None:
        """The committed batch's deferred callbacks; one failing does not stop the others."""
        callbacks, state.after_commit = state.after_commit, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("an after-commit callback failed", extra={"group": self.group})
