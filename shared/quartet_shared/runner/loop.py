"""The runner's loop and lifecycle: its thread, its consumer (rebuilt after a stall), rebalances and lag."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.errors import KafkaError
from quartet_contracts.topics import DLQ_SUFFIX, RETRY_SUFFIX, TopicSpec

from quartet_shared.cache import ResilientRedis
from quartet_shared.clients import KAFKA, KafkaClients, wait_for_partitions
from quartet_shared.metrics import CONSUMER_LAG, CONSUMER_UP
from quartet_shared.producer import Producer, Stopped
from quartet_shared.runner.batch import Batches
from quartet_shared.runner.commit import CommitProtocol, ProducerFactory, commit_protocol, transactional_id
from quartet_shared.runner.dispatch import Dispatcher
from quartet_shared.runner.failures import Failures
from quartet_shared.runner.kafka_compat import JoinWatch, StallWatchdog
from quartet_shared.runner.model import Mode, Subscription
from quartet_shared.settings import KernelSettings
from quartet_shared.topics import ensure_topics

log = logging.getLogger(__name__)

# A batch costs a poll, a Redis lookup and record, and a synchronous commit (four broker round trips for a
# transaction) whatever its size; at kafka-python's default of 500 records those cost the at-least-once runner
# 0.76 of a raw loop's rate, at 2000 0.90 (bench). A stop still ends a batch after its current record, so larger
# batches do not lengthen a drain. Slow handlers (the job workers) pass their own.
MAX_POLL_RECORDS = 2000
# After a poll raises a retriable error (kafka-python 3 raises a connection lost in the middle of poll's own
# coordinator or metadata lookup, when a node dies as it answers), the runner waits this long and polls again;
# after this many in a row it rebuilds its consumer, as it does for a stalled client.
POLL_RETRY_S = 0.5
POLL_FAILURES_BEFORE_REBUILD = 20


def _by_topic(subscriptions: Iterable[Subscription[Any]]) -> dict[str, Subscription[Any]]:
    """Each subscription under its topic, and under its retry topic when it has one."""
    subs: dict[str, Subscription[Any]] = {}
    for sub in subscriptions:
        subs[sub.topic] = sub
        if sub.retry:
            subs[sub.topic + RETRY_SUFFIX] = sub
    return subs


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
        session_timeout_ms: int | None = None,
        poll_timeout_ms: int = 200,
        sleep: Callable[[float], None] = time.sleep,
        producer_factory: ProducerFactory = Producer,
        consumer_factory: Callable[..., KafkaConsumer] | None = None,
        commit: CommitProtocol | None = None,
        clients: KafkaClients = KAFKA,
    ) -> None:
        self.settings = settings
        self.group = group
        self.mode = mode
        self.source = source or f"/quartet/{settings.service_name}"
        self._subs = _by_topic(subscriptions)
        self._max_poll_records = max_poll_records or MAX_POLL_RECORDS
        self._max_poll_interval_ms = max_poll_interval_ms
        self._session_timeout_ms = session_timeout_ms or settings.consumer_session_timeout_ms
        self._poll_timeout_ms = poll_timeout_ms
        self._consumer_factory = consumer_factory or clients.consumer
        self._clients = clients
        self.stopping = threading.Event()
        self.started = threading.Event()
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._consumer: KafkaConsumer | None = None
        self._assigned = threading.Event()
        self._last_lag = 0.0
        # The partitions whose lag this runner published: a partition it no longer holds must not keep reporting
        # its last lag beside the new owner's (the alerts and panels sum lag over the group's members).
        self._lag_shown: set[TopicPartition] = set()
        # Which consumer's rebalance callbacks count: a dropped one's are ignored.
        self._epoch = 0
        self._revokes = 0
        self._watchdog = StallWatchdog(group, settings.consumer_stall_timeout_s)
        self._join_watch = JoinWatch(group)
        self.commit = commit or commit_protocol(
            mode,
            settings,
            group,
            redis=redis,
            producer_factory=producer_factory,
            guard=self._watchdog.call,
            clients=clients,
        )
        self._failures = Failures(settings, group, self.commit, self._subs.get)
        self._dispatcher = Dispatcher(settings, group, self._subs, self.commit, self._failures, self.stopping, sleep)
        self._batches = Batches(group, self.commit, self._dispatcher, self._failures, self.stopping)

    @property
    def stalls(self) -> int:
        """How many times a stalled Kafka call made the runner rebuild its consumer."""
        return self._watchdog.stalls

    @property
    def join_restarts(self) -> int:
        """How many times a join the client dropped half-way was restarted."""
        return self._join_watch.restarts

    @property
    def revokes(self) -> int:
        """How many rebalances took partitions from this member, a join of another's or one of its own."""
        return self._revokes

    @property
    def consumer(self) -> KafkaConsumer | None:
        """The current consumer (None before the loop has subscribed, or while it is rebuilt)."""
        return self._consumer

    def ready(self) -> bool:
        """Whether the runner can take records now: its producer is ready and its consumer has joined its group."""
        alive = self._thread is None or self._thread.is_alive()
        return alive and self.commit.ready.is_set() and self._assigned.is_set() and not self.stopping.is_set()

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
        finished = self._watchdog.start()
        try:
            self._prepare_topics()
            self.commit.open(self.stopping)
            self._loop()
        except Stopped:
            log.info("stopped before the producer was ready", extra={"group": self.group})
        finally:
            finished.set()
            self._close()

    def _loop(self) -> None:
        stalled = self._watchdog.stalled
        while not self.stopping.is_set():
            try:
                self._poll_loop(self._subscribe())
            except KafkaError:
                if not stalled.is_set():
                    raise
            if not stalled.is_set():
                if self._consumer is not None:
                    self.commit.settle(self._consumer)
                break
            # What the dropped consumer had not committed is consumed again by the new one (and its ids
            # already done are skipped), so rebuilding loses nothing and doubles nothing.
            stalled.clear()
            self._drop()

    def _new_consumer(self) -> KafkaConsumer:
        static: dict[str, str] = {}
        if self.settings.consumer_static_membership and self.mode is Mode.TRANSACTIONAL:
            # The transactional id is already unique per live member (two would fence each other), so naming the
            # member by it asks nothing new of the deployment.
            static["group_instance_id"] = transactional_id(self.group, self.settings)
        return self._consumer_factory(
            self.settings,
            group_id=self.group,
            auto_offset_reset="earliest",
            max_poll_records=self._max_poll_records,
            max_poll_interval_ms=self._max_poll_interval_ms,
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=min(self.settings.consumer_heartbeat_interval_ms, self._session_timeout_ms // 3),
            request_timeout_ms=max(self.settings.request_timeout_ms, self._session_timeout_ms + 5000),
            **static,
        )

    def _subscribe(self) -> KafkaConsumer:
        consumer = self._new_consumer()
        self._consumer = self._watchdog.consumer = consumer
        self._epoch += 1
        self._join_watch.reset()
        # Subscribed before the wait, whose metadata fetch then fills kafka-python's snapshot of the subscribed
        # topics: a leader that assigned from an empty one rebalanced again at the next refresh (which its own
        # assignment asks for), a lone member included, revoking and committing whatever it had taken by then.
        consumer.subscribe(sorted(self._subs), listener=_Listener(self, self._epoch))
        # A group that joins before a brand-new topic's metadata reaches this client is assigned nothing for
        # it until the next metadata refresh (minutes); waiting here avoids that idle start.
        try:
            wait_for_partitions(consumer, sorted(self._subs), 60.0, stop=self.stopping)
        except LookupError:
            # Told to stop while waiting: the poll loop below returns at once.
            if not self.stopping.is_set():
                raise
        self.started.set()
        return consumer

    def _poll_loop(self, consumer: KafkaConsumer) -> None:
        stalled = self._watchdog.stalled
        failed_in_a_row = 0
        while not self.stopping.is_set() and not stalled.is_set():
            self._dispatcher.pauses.resume_due(consumer)
            try:
                with self._watchdog.call():
                    batch = consumer.poll(timeout_ms=self._poll_timeout_ms)
            except KafkaError as exc:
                if not exc.retriable or stalled.is_set():
                    raise
                failed_in_a_row += 1
                log.warning(
                    "poll failed; polling again",
                    extra={"group": self.group, "error": f"{type(exc).__name__}: {exc}", "in_a_row": failed_in_a_row},
                )
                if failed_in_a_row >= POLL_FAILURES_BEFORE_REBUILD:
                    stalled.set()
                self.stopping.wait(POLL_RETRY_S)
                continue
            failed_in_a_row = 0
            if batch:
                self._process_batch(batch)
            self.commit.tick(consumer)
            self._report(consumer)
            self._join_watch.check(consumer)

    def _process_batch(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        assert self._consumer is not None
        self._batches.process(self._consumer, batch)

    def _drop(self) -> None:
        """Close a consumer whose client stalled, giving up after a few seconds (its member then expires)."""
        consumer, self._consumer = self._consumer, None
        self._watchdog.consumer = None
        self._assigned.clear()
        CONSUMER_UP.labels(self.group).set(0.0)
        self._hide_lag(None)
        # Its listener may still fire while it closes; from now on its calls are ignored (see _Listener).
        self._epoch += 1
        if consumer is not None:
            closer = threading.Thread(target=lambda: consumer.close(autocommit=False), daemon=True)
            closer.start()
            closer.join(5.0)
        self._dispatcher.pauses.forget()
        self.commit.revoked(None)

    def _close(self) -> None:
        self._assigned.clear()
        CONSUMER_UP.labels(self.group).set(0.0)
        self._hide_lag(None)
        self.commit.close()
        with contextlib.suppress(Exception):
            if self._consumer is not None:
                self._consumer.close(autocommit=False)

    def _prepare_topics(self) -> None:
        specs = [TopicSpec(t, "") for t in self._subs]
        specs += [TopicSpec(t + DLQ_SUFFIX, "") for t in self._subs if not t.endswith(RETRY_SUFFIX)]
        ensure_topics(self.settings, specs, clients=self._clients)
        self.commit.prepare_topics(self._subs)

    # ---- rebalances --------------------------------------------------------------------------------

    def _on_assigned(self, partitions: list[TopicPartition]) -> None:
        # Reading a changelog is progress, not a stall of the poll that runs this listener.
        self.commit.assigned(partitions, self._watchdog.progress)
        self._assigned.set()
        log.info("partitions assigned", extra={"group": self.group, "partitions": [str(p) for p in partitions]})

    async def _on_revoked(self, partitions: list[TopicPartition]) -> None:
        if partitions:
            # Counted before the commit below: whoever sees what it committed sees the count too.
            self._revokes += 1
        # Each batch is made final (or aborted) before the next poll; only offsets held back for the commit
        # interval are left, committed here while this member's generation is still the group's.
        if self._consumer is not None:
            await self.commit.before_revoke(self._consumer)
        self.commit.revoked(partitions)
        self._dispatcher.pauses.forget(partitions, self._consumer)
        self._hide_lag(partitions)
        log.info("partitions revoked", extra={"group": self.group, "partitions": [str(p) for p in partitions]})

    def _report(self, consumer: KafkaConsumer) -> None:
        """Once a second: whether this member is up (an alert tells a job service with none), and its lag."""
        now = time.monotonic()
        if now - self._last_lag < 1.0:
            return
        self._last_lag = now
        CONSUMER_UP.labels(self.group).set(1.0 if self.ready() else 0.0)
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue
            with contextlib.suppress(Exception), self._watchdog.call():
                lag = max(0, high - consumer.position(tp))
                CONSUMER_LAG.labels(self.group, tp.topic, str(tp.partition)).set(lag)
                self._lag_shown.add(tp)

    def _hide_lag(self, partitions: list[TopicPartition] | None) -> None:
        """Stop publishing the lag of `partitions` (None: all this runner published)."""
        gone = self._lag_shown if partitions is None else self._lag_shown.intersection(partitions)
        for tp in list(gone):
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(self.group, tp.topic, str(tp.partition))
            self._lag_shown.discard(tp)


class _Listener(AsyncConsumerRebalanceListener):  # type: ignore[misc]
    # Async, so that the revoke can await a commit on the client's I/O loop (see commit_in_rebalance).
    def __init__(self, runner: ConsumerRunner, epoch: int) -> None:
        self._runner = runner
        self._epoch = epoch

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if self._runner._epoch == self._epoch:
            await self._runner._on_revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        if self._runner._epoch == self._epoch:
            self._runner._on_assigned(list(assigned))
