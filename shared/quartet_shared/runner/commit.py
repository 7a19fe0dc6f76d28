"""How a batch becomes final: flush then commit offsets (at least once), or commit one transaction.

The choice is made once, by `commit_protocol`, when the runner is built; the rest of the runner asks its
protocol and never the mode. The protocol owns the producer (a transactional one is tied to its transaction)
and the dedup that matches it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata

from quartet_shared.cache import ResilientRedis
from quartet_shared.clients import KAFKA, KafkaClients
from quartet_shared.metrics import TRANSACTIONS
from quartet_shared.producer import Producer, close_kafka_producer, open_transactional
from quartet_shared.runner.dedup import Changelog, RedisDedup
from quartet_shared.runner.kafka_compat import commit_in_rebalance, end_transaction_within, send_offsets_within
from quartet_shared.runner.model import BatchState, Mode
from quartet_shared.settings import KernelSettings

log = logging.getLogger(__name__)

BATCH_LINGER_MS = 1000
BATCH_BYTES = 512 * 1024
ProducerFactory = Callable[..., Producer]
Guard = Callable[[], AbstractContextManager[None]]
# How many fresh producers a stalled one is replaced with before the batch is given up to be redone later, and
# the share of the transaction stall timeout each may wait for its coordinator: 18 attempts of a third wait as
# long in all as 6 of the whole bound did, but one built before the controller fenced the dead coordinator (it
# is told that node, and waits on it) is given up sooner, so the next, told the new one, starts seconds earlier
# (a healthy init_transactions took 0.5 s on a loaded host).
REPLACE_ATTEMPTS = 18
REPLACE_SHARE = 1 / 3


class CommitProtocol(ABC):
    """One way of making a batch final, with the producer and the dedup it needs."""

    def __init__(
        self,
        settings: KernelSettings,
        group: str,
        producer_factory: ProducerFactory = Producer,
        guard: Guard = contextlib.nullcontext,
        clients: KafkaClients = KAFKA,
    ) -> None:
        self.settings = settings
        self.group = group
        self.clients = clients
        self._producer_factory = producer_factory
        self._guard = guard
        self._producer: Producer | None = None
        self.ready = threading.Event()

    @property
    def producer(self) -> Producer:
        """The producer every output, retry and dead letter goes through."""
        if self._producer is None:
            raise RuntimeError("the commit protocol is not open")
        return self._producer

    def _new_producer(self, **overrides: Any) -> Producer:
        # Everything this producer sends is flushed before the batch commits, so lingering costs no latency;
        # it lets the sender thread wake once per batch instead of contending for the GIL on every record.
        return self._producer_factory(
            self.settings, clients=self.clients, linger_ms=BATCH_LINGER_MS, batch_size=BATCH_BYTES, **overrides
        )

    def open(self, stopping: threading.Event) -> None:
        """Build the producer; raises Stopped if `stopping` is set first."""
        self._producer = self._new_producer()
        self.ready.set()

    @abstractmethod
    def prepare_topics(self, topics: Iterable[str]) -> None:
        """Create what this protocol keeps beside the consumed topics."""

    @abstractmethod
    def known(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> Callable[[], set[str]]:
        """Ask which of a batch's ids are already done; the returned call reads the answer."""

    @abstractmethod
    def seen(self, tp: TopicPartition) -> set[str] | None:
        """The ids already done on an assigned partition, when this protocol keeps them."""

    @abstractmethod
    def assigned(self, partitions: list[TopicPartition], progress: Callable[[], None]) -> None:
        """Partitions were assigned to this member."""

    @abstractmethod
    def revoked(self, partitions: list[TopicPartition] | None) -> None:
        """Partitions were taken from this member (all of them, with None: its consumer was dropped)."""

    @abstractmethod
    def begin(self) -> None:
        """Start a batch."""

    @abstractmethod
    def done(self, base: TopicPartition, message_id: str, state: BatchState) -> None:
        """A record was handled; its id is done once the batch commits."""

    @abstractmethod
    def answered(self, base: TopicPartition, message_id: str, state: BatchState) -> None:
        """A dead-lettered record's hook answered for it; a replay of it may be skipped like a done one."""

    @abstractmethod
    def commit(self, consumer: KafkaConsumer, state: BatchState) -> None:
        """Make the batch's work final."""

    @abstractmethod
    def abandon(self, consumer: KafkaConsumer, state: BatchState, *, keep_finished: bool, fresh_producer: bool) -> bool:
        """Throw the batch's open work away; whether its finished records were committed after all."""

    @abstractmethod
    def tick(self, consumer: KafkaConsumer) -> None:
        """Between polls: commit what is held back once its interval has passed."""

    @abstractmethod
    def settle(self, consumer: KafkaConsumer) -> None:
        """Commit what is held back now, before the consumer closes."""

    @abstractmethod
    async def before_revoke(self, consumer: KafkaConsumer) -> None:
        """Commit what is held back from inside a rebalance, before the member rejoins with a new generation."""

    def close(self) -> None:
        """Close the producer."""
        if self._producer is not None:
            with contextlib.suppress(Exception):
                self._producer.close(timeout_s=5)


class AtLeastOnce(CommitProtocol):
    """Handlers make their effects durable; the runner flushes what they produced, then commits offsets."""

    def __init__(
        self,
        *args: Any,
        redis: ResilientRedis | None = None,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._dedup = RedisDedup(redis, self.group, self.settings.idempotency_ttl_s)
        # Offsets of batches whose work is durable and recorded, not yet committed (see consumer_commit_interval_s).
        self._pending: dict[TopicPartition, OffsetAndMetadata] = {}
        self._clock = clock
        self._last_commit = clock()

    def known(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> Callable[[], set[str]]:
        """Ask Redis (one round trip for the whole batch, answered while the runner decodes)."""
        return self._dedup.lookup(batch)

    def seen(self, tp: TopicPartition) -> set[str] | None:
        """Redis answers per batch (`known`); nothing is held per partition."""
        return None

    def prepare_topics(self, topics: Iterable[str]) -> None:
        """Nothing beside the consumed topics."""

    def assigned(self, partitions: list[TopicPartition], progress: Callable[[], None]) -> None:
        """Nothing to restore."""

    def revoked(self, partitions: list[TopicPartition] | None) -> None:
        """Forget the offsets held back for the partitions: another member commits them from now on."""
        if partitions is None:
            self._pending.clear()
        for tp in partitions or ():
            self._pending.pop(tp, None)

    def begin(self) -> None:
        """A batch needs no opening."""

    def done(self, base: TopicPartition, message_id: str, state: BatchState) -> None:
        """Remember the id in Redis after the commit."""
        state.done_ids.append(message_id)

    def answered(self, base: TopicPartition, message_id: str, state: BatchState) -> None:
        """A dead letter's handler made no effect of its own to remember."""

    def commit(self, consumer: KafkaConsumer, state: BatchState) -> None:
        """Flush every output (raising ProduceFailed if one was not delivered); its offsets commit on `tick`."""
        self.producer.flush()
        # Every effect is durable now (the handlers' own and the outputs just flushed), so Redis may know; its
        # reply is read before the next batch's lookup. A record consumed again before its offset is committed is
        # then skipped as done.
        self._dedup.remember(state.done_ids)
        self._pending.update(state.offsets)

    def tick(self, consumer: KafkaConsumer) -> None:
        """Commit the held-back offsets once the commit interval has passed since the last commit."""
        if self._pending and self._clock() - self._last_commit >= self.settings.consumer_commit_interval_s:
            self.settle(consumer)

    def settle(self, consumer: KafkaConsumer) -> None:
        """Commit the held-back offsets now; a failure keeps them held for the next tick."""
        if not self._pending:
            return
        try:
            with self._guard():
                consumer.commit(offsets=dict(self._pending))
        except KafkaError as exc:
            # The records behind them are done and recorded: if these offsets never commit, the records are
            # consumed again and skipped. A rebalance under way (the usual cause) commits them in its callback.
            _not_committed(self.group, exc)
            return
        self._last_commit = self._clock()
        self._pending.clear()

    async def before_revoke(self, consumer: KafkaConsumer) -> None:
        """Commit the held-back offsets while this member's generation is still the group's."""
        if not self._pending:
            return
        try:
            await commit_in_rebalance(consumer, dict(self._pending))
        except KafkaError as exc:
            _not_committed(self.group, exc)

    def abandon(self, consumer: KafkaConsumer, state: BatchState, *, keep_finished: bool, fresh_producer: bool) -> bool:
        """Commit what finished before a stop, if its outputs are confirmed delivered; nothing else."""
        if not (keep_finished and state.offsets):
            return False
        try:
            self.commit(consumer, state)
        except KafkaError:
            return False
        return True

    def close(self) -> None:
        """Close Redis and the producer."""
        with contextlib.suppress(Exception):
            self._dedup.close()
        super().close()


class Transactional(CommitProtocol):
    """Each batch is one transaction: outputs, changelog records, dead letters and the consumed offsets."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._changelog = Changelog(self.settings, self.group, self.clients)
        # Set when a call of the open transaction ran past its bound: its producer waits on a coordinator that
        # is gone, so an abort through it would wait too. `_in_doubt`: the call that stalled was the commit itself.
        self._stalled = False
        self._in_doubt = False

    def open(self, stopping: threading.Event, **overrides: Any) -> None:
        """Build the transactional producer and initialise it, giving up as soon as `stopping` is set."""
        self._producer = open_transactional(
            functools.partial(
                self._new_producer,
                transactional_id=transactional_id(self.group, self.settings),
                transaction_timeout_ms=self.settings.transaction_timeout_ms,
                **overrides,
            ),
            stopping,
        )
        self.ready.set()

    def known(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> Callable[[], set[str]]:
        """The changelog held per partition (`seen`) answers exactly; nothing to ask per batch."""
        return set

    def prepare_topics(self, topics: Iterable[str]) -> None:
        """Create the changelog topics."""
        self._changelog.prepare_topics(topics)

    def seen(self, tp: TopicPartition) -> set[str] | None:
        """The partition's ids from the changelog."""
        return self._changelog.seen(tp)

    def assigned(self, partitions: list[TopicPartition], progress: Callable[[], None]) -> None:
        """Restore the new partitions' ids from their changelog."""
        self._changelog.assigned(partitions, progress)

    def revoked(self, partitions: list[TopicPartition] | None) -> None:
        """Forget the partitions' ids."""
        if partitions is None:
            self._changelog.clear()
        else:
            self._changelog.revoked(partitions)

    def begin(self) -> None:
        """Begin the batch's transaction."""
        self.producer.raw.begin_transaction()

    def done(self, base: TopicPartition, message_id: str, state: BatchState) -> None:
        """Write the id to the changelog in the batch's transaction."""
        state.dedup_records.append((base, message_id))

    def answered(self, base: TopicPartition, message_id: str, state: BatchState) -> None:
        """The hook's answer is the record's one output: record it as done."""
        state.dedup_records.append((base, message_id))

    def commit(self, consumer: KafkaConsumer, state: BatchState) -> None:
        """Send the changelog records and the offsets into the transaction and commit it, each step bounded."""
        raw = self.producer.raw
        bound = self.settings.transaction_stall_timeout_s
        grouped = self._changelog.publish(self.producer, state.dedup_records)
        try:
            # commit_transaction would flush too; flushing here first names a refused record as the cause.
            self.producer.flush(timeout_s=bound)
            if state.offsets:
                membership = consumer.group_metadata()
                # A member the group dropped (a frozen "zombie") has its generation reset to -1 and no member
                # id, and the broker does not fence offsets sent that way: they could move the group's offsets
                # back and commit a second output. Abort instead; the partitions belong to another member now.
                if membership.generation_id < 0 or not membership.member_id:
                    raise CommitFailedError("this member left the group; its partitions belong to another member")
                send_offsets_within(raw, state.offsets, membership, bound)
        except KafkaTimeoutError:
            self._stalled = True
            raise
        try:
            end_transaction_within(raw, commit=True, timeout_s=bound)
        except KafkaTimeoutError:
            # The coordinator may have committed it all the same; `abandon` reads back which it was.
            self._stalled = self._in_doubt = True
            raise
        TRANSACTIONS.labels(self.group, "committed").inc()
        self._changelog.applied(grouped)

    def tick(self, consumer: KafkaConsumer) -> None:
        """Nothing is held back: each batch's transaction committed its offsets."""

    def settle(self, consumer: KafkaConsumer) -> None:
        """Nothing is held back: each batch's transaction committed its offsets."""

    async def before_revoke(self, consumer: KafkaConsumer) -> None:
        """Nothing is held back: each batch's transaction committed its offsets."""

    def abandon(self, consumer: KafkaConsumer, state: BatchState, *, keep_finished: bool, fresh_producer: bool) -> bool:
        """Abort the transaction, or replace a stalled producer; whether a commit in doubt went through after all.

        The replacement's init_transactions fences the stalled producer and settles its transaction (aborting
        it, or finishing a commit the coordinator had begun), so the group's committed offsets then say whether
        the batch is done: a batch redone after a commit that did go through would be doubled.
        """
        stalled, in_doubt = self._stalled, self._in_doubt
        self._stalled = self._in_doubt = False
        if stalled:
            fresh_producer = True
        else:
            try:
                end_transaction_within(
                    self.producer.raw, commit=False, timeout_s=self.settings.transaction_stall_timeout_s
                )
            except KafkaError:
                # kafka-python can leave a transactional producer in a state it cannot leave by itself (after
                # splitting a refused batch, for one); a fresh one with the same id aborts what is open.
                fresh_producer = True
        replaced = fresh_producer and self._replace_producer()
        TRANSACTIONS.labels(self.group, "aborted").inc()
        return in_doubt and replaced and self._committed_after_all(consumer, state)

    def _committed_after_all(self, consumer: KafkaConsumer, state: BatchState) -> bool:
        """Whether the group's committed offsets are the batch's own: its stalled commit went through."""
        if not state.offsets:
            return False
        try:
            with self._guard():
                done = all(consumer.committed(tp) == meta.offset for tp, meta in state.offsets.items())
        except KafkaError:
            return False
        if done:
            log.warning("a stalled commit went through after all", extra={"group": self.group})
        return done

    def _replace_producer(self) -> bool:
        """Swap the producer for a fresh one (its init fences the old and settles what it left); whether it was."""
        old = self._producer
        # A replacement built while the coordinator's node is still listed as its leader is told that dead node
        # and waits on it like its predecessor; one built a few seconds later, once the controller has fenced
        # the node, finds the new coordinator. So each attempt is bounded like a commit, and tried again.
        bound_ms = int(self.settings.transaction_stall_timeout_s * REPLACE_SHARE * 1000)
        for attempt in range(1, REPLACE_ATTEMPTS + 1):
            try:
                self.open(threading.Event(), max_block_ms=bound_ms)
                break
            except KafkaError:
                log.warning(
                    "a replacement producer could not initialise", extra={"group": self.group, "attempt": attempt}
                )
        else:
            log.error(
                "could not replace the transactional producer; keeping the old one for now", extra={"group": self.group}
            )
            return False
        if old is not None:
            # Its abort may have failed with records still queued: a plain close(timeout=0) then raises on its
            # flush and leaves the I/O thread, and its sockets, running for as long as the process lives.
            with contextlib.suppress(Exception):
                close_kafka_producer(old.raw, 0)
        log.warning("transactional producer replaced", extra={"group": self.group})
        return True


def _not_committed(group: str, exc: KafkaError) -> None:
    log.warning(
        "held-back offsets not committed yet; their records are skipped as done if consumed again",
        extra={"group": group, "error": f"{type(exc).__name__}: {exc}"},
    )


def transactional_id(group: str, settings: KernelSettings) -> str:
    """The transactional id of a group's member in this worker slot: stable across restarts, unique among the live."""
    return f"{group}-{settings.instance_id}"


def commit_protocol(
    mode: Mode,
    settings: KernelSettings,
    group: str,
    *,
    redis: ResilientRedis | None = None,
    producer_factory: ProducerFactory = Producer,
    guard: Guard = contextlib.nullcontext,
    clients: KafkaClients = KAFKA,
) -> CommitProtocol:
    """The protocol for `mode` (the one place the mode is looked at)."""
    if mode is Mode.TRANSACTIONAL:
        # The committed changelog, held in memory per partition, already answers "done before?" exactly; a
        # Redis lookup there would only add two round trips per batch.
        return Transactional(settings, group, producer_factory, guard, clients)
    return AtLeastOnce(settings, group, producer_factory, guard, clients, redis=redis)
