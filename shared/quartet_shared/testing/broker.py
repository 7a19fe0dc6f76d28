"""An in-memory Kafka for tests: per-partition logs, consumer groups and transactions, with fault hooks.

`InMemoryBroker` is a `KafkaClients` port: hand it to the runner (`ConsumerRunner(..., clients=broker)`),
`Producer` or `ensure_topics` and their real code runs against it, with no server. It keeps what a test needs to
count effects per id: each partition's log with offsets, each group's committed offsets, and transactions whose
writes a read_committed reader sees only once committed (an aborted write never). The fault hooks are the ones a
real cluster shows a runner: a failed commit, a lost or fenced producer, a record delivered twice and a rebalance
in the middle of a batch. Like FastStream's test broker it replaces the transport only; dispatch, the commit
protocols, retries and dead letters are the runner's own.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from kafka import TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener, ConsumerRebalanceListener
from kafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaError,
    KafkaTimeoutError,
    ProducerFencedError,
    TopicAlreadyExistsError,
)
from kafka.producer.future import RecordMetadata
from kafka.structs import ConsumerGroupMetadata, MemberState, OffsetAndMetadata
from quartet_contracts.envelope import Envelope

from quartet_shared.runner.kafka_compat import TransactionStalled
from quartet_shared.settings import KernelSettings

Headers = list[tuple[str, bytes]]
# How long a poll waits between looks at the logs: short, so a test never waits on it.
_POLL_STEP_S = 0.02


@dataclass
class _Txn:
    """One producer transaction: its state and the offsets it commits for consumer groups."""

    transactional_id: str
    state: Literal["open", "committed", "aborted"] = "open"
    offsets: dict[str, dict[TopicPartition, int]] = field(default_factory=dict)
    # Set when something in the transaction failed: it can then only be aborted.
    error: BaseException | None = None


@dataclass(frozen=True)
class _Entry:
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int
    txn: _Txn | None


@dataclass
class Faults:
    """What is armed to go wrong next; each armed fault fires once (or `count` times) and is used up."""

    commit_failures: int = 0
    # Errors the next polls raise (as kafka-python 3's does when a node dies in the middle of its lookups).
    poll_failures: list[BaseException] = field(default_factory=list)
    # Transaction commits that stall (as on a coordinator that is gone); True: the commit went through all the same.
    commit_stalls: list[bool] = field(default_factory=list)
    # (topic or None for any, the error, whether the send call itself raises it rather than the delivery)
    send_failures: list[tuple[str | None, BaseException, bool]] = field(default_factory=list)
    redeliveries: set[tuple[TopicPartition, int]] = field(default_factory=set)
    # While set, init_transactions blocks as it does when the transaction coordinator cannot be reached.
    transactions_held: bool = False
    # How many init_transactions calls are blocked now.
    inits_waiting: int = 0


class _Group:
    """A consumer group: its members, generation, assignment and committed offsets."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: list[InMemoryConsumer] = []
        self.generation = 0
        self.assignment: dict[str, list[TopicPartition]] = {}
        self.committed: dict[TopicPartition, int] = {}

    def rebalance(self, partitions: dict[str, int]) -> None:
        """Start a new generation and spread every subscribed partition over the members (eager, round robin)."""
        self.generation += 1
        self.assignment = {m.member_id: [] for m in self.members}
        wanted = sorted({t for m in self.members for t in m.subscription()} & set(partitions))
        tps = [TopicPartition(t, p) for t in wanted for p in range(partitions[t])]
        for i, tp in enumerate(tps):
            eligible = [m for m in self.members if tp.topic in m.subscription()]
            self.assignment[eligible[i % len(eligible)].member_id].append(tp)

    def current(self, member_id: str, generation: int) -> bool:
        """Whether a member speaks for the group's current generation."""
        return generation == self.generation and any(m.member_id == member_id for m in self.members)


class InMemoryBroker:
    """A single in-memory broker; thread-safe, since the runner polls it from its own thread."""

    def __init__(self, partitions: int = 1) -> None:
        self.partitions = partitions
        self.faults = Faults()
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._logs: dict[str, list[list[_Entry]]] = {}
        self._groups: dict[str, _Group] = {}
        self._epochs: dict[str, int] = {}
        self._open: dict[str, _Txn] = {}
        self._ids = itertools.count(1)

    # ---- the KafkaClients port ----------------------------------------------------------------------

    def producer(self, settings: KernelSettings, **config: Any) -> InMemoryProducer:
        """A producer (transactional when `transactional_id` is given)."""
        max_block_ms = config.get("max_block_ms", settings.request_timeout_ms)
        return InMemoryProducer(self, config.get("transactional_id"), max_block_ms / 1000)

    def consumer(self, settings: KernelSettings, **config: Any) -> InMemoryConsumer:
        """A consumer; read_committed unless `isolation_level` says otherwise, as `kafka_consumer` builds it."""
        return InMemoryConsumer(self, f"member-{next(self._ids)}", config)

    def admin(self, settings: KernelSettings, **config: Any) -> InMemoryAdmin:
        """An admin client."""
        return InMemoryAdmin(self)

    # ---- topics and records (what tests read) ------------------------------------------------------

    def create_topic(self, name: str, partitions: int | None = None) -> bool:
        """Create a topic; False if it exists. Groups subscribed to it rebalance, as on a metadata change."""
        with self.changed:
            if name in self._logs:
                return False
            self._logs[name] = [[] for _ in range(partitions or self.partitions)]
            for group in self._groups.values():
                if any(name in m.subscription() for m in group.members):
                    group.rebalance(self.partition_counts())
            self.changed.notify_all()
            return True

    def partition_counts(self) -> dict[str, int]:
        """Each topic's number of partitions."""
        with self.lock:
            return {t: len(parts) for t, parts in self._logs.items()}

    def publish(self, topic: str, envelope: Envelope, *, partition: int | None = None) -> int:
        """Write an envelope outside any transaction (as an upstream service would); returns its offset."""
        key, value, headers = envelope.to_kafka()
        return int(self.append(topic, key, value, headers, partition, None).offset)

    def records(self, topic: str, *, committed_only: bool = True) -> list[ConsumerRecord]:
        """Every record of a topic a reader sees (read_committed by default), partition by partition."""
        with self.lock:
            out: list[ConsumerRecord] = []
            for p in range(len(self._logs.get(topic, []))):
                out += self.read(TopicPartition(topic, p), 0, committed_only, 1 << 30)[0]
            return out

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
        """Wait (at most `timeout_s`) until `predicate` holds, looking again whenever the broker changes."""
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(min(left, 0.05))
            return True

    def drained(self, group: str) -> bool:
        """Whether every member of `group` has polled and found nothing since it last took records: each batch
        before that poll was committed (or abandoned) by then, so the group's offsets are final for now."""
        with self.lock:
            members = self.group(group).members
            return bool(members) and all(m.drained for m in members) and not self.faults.redeliveries

    def committed(self, group: str, tp: TopicPartition) -> int | None:
        """A group's committed offset on a partition."""
        with self.lock:
            found = self._groups.get(group)
            return None if found is None else found.committed.get(tp)

    # ---- fault hooks -------------------------------------------------------------------------------

    def fail_polls(self, error: BaseException, count: int = 1) -> None:
        """Make the next `count` consumer polls raise `error`."""
        with self.lock:
            self.faults.poll_failures.extend([error] * count)

    def fail_commits(self, count: int = 1) -> None:
        """Make the next `count` offset commits (a consumer's, or a transaction's) fail."""
        with self.lock:
            self.faults.commit_failures += count

    def stall_commits(self, *, went_through: bool, count: int = 1) -> None:
        """Make the next `count` transaction commits stall past their bound, having committed or not."""
        with self.lock:
            self.faults.commit_stalls.extend([went_through] * count)

    def take_commit_stall(self) -> bool | None:
        """The armed commit stall, used up (whether the commit went through); None when none is armed."""
        with self.lock:
            return self.faults.commit_stalls.pop(0) if self.faults.commit_stalls else None

    def fail_sends(
        self, count: int = 1, *, error: BaseException | None = None, topic: str | None = None, at_send: bool = False
    ) -> None:
        """Make the next `count` sends (to `topic`, or any) fail with `error`, by default a delivery timeout;
        `at_send` raises it from the send call itself, as kafka-python does when its buffer stays full."""
        with self.lock:
            failure = error or KafkaTimeoutError("in-memory broker: the record was not delivered")
            self.faults.send_failures += [(topic, failure, at_send)] * count

    def fence(self, transactional_id: str | None = None) -> None:
        """Fence a transactional producer (every initialised one with None), as a new incarnation does."""
        with self.changed:
            for tid in [transactional_id] if transactional_id else list(self._epochs):
                self._new_epoch(tid)

    def hold_transactions(self, held: bool = True) -> None:
        """Make init_transactions block (until released, or its max_block_ms passes: KafkaTimeoutError), as it
        does while no transaction coordinator can be reached; `held=False` releases it."""
        with self.changed:
            self.faults.transactions_held = held
            self.changed.notify_all()

    def deliver_twice(self, topic: str, offset: int, partition: int = 0) -> None:
        """Deliver a record again after it was delivered: its consumer is rewound to it once, later on."""
        with self.lock:
            self.faults.redeliveries.add((TopicPartition(topic, partition), offset))

    def rebalance(self, group: str) -> None:
        """Start a new generation of `group`: its members' commits for the old one fail, and each member is
        revoked and assigned again (from the committed offsets) at its next poll."""
        with self.changed:
            self._groups[group].rebalance(self.partition_counts())
            self.changed.notify_all()

    def expel(self, consumer: InMemoryConsumer) -> None:
        """Drop a member from its group (as when its session expires); it becomes a zombie until it polls."""
        with self.changed:
            group = self.group(consumer.group_id or "")
            group.members.remove(consumer)
            group.rebalance(self.partition_counts())
            consumer.expelled()

    # ---- what the clients call ---------------------------------------------------------------------

    def append(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        partition: int | None,
        txn: _Txn | None,
    ) -> RecordMetadata:
        """Append a record (creating its topic, as auto-creation would); its metadata."""
        with self.changed:
            if topic not in self._logs:
                self.create_topic(topic)
            parts = self._logs[topic]
            if partition is None:
                partition = zlib.crc32(key) % len(parts) if key else sum(map(len, parts)) % len(parts)
            log = parts[partition]
            log.append(_Entry(key, value, list(headers), int(time.time() * 1000), txn))
            self.changed.notify_all()
            tp = TopicPartition(topic, partition)
            return RecordMetadata(topic, partition, tp, len(log) - 1, log[-1].timestamp_ms, None, 0, 0, 0)

    def read(
        self, tp: TopicPartition, position: int, committed_only: bool, limit: int
    ) -> tuple[list[ConsumerRecord], int]:
        """Up to `limit` records from `position`, and the position after them. A read_committed reader stops at
        an open transaction's first record and skips aborted ones."""
        with self.lock:
            log = self._logs[tp.topic][tp.partition]
            out: list[ConsumerRecord] = []
            while position < len(log) and len(out) < limit:
                entry = log[position]
                state = entry.txn.state if entry.txn is not None else "committed"
                if committed_only and state == "open":
                    break
                if not (committed_only and state == "aborted"):
                    out.append(_record(tp, position, entry))
                position += 1
            return out, position

    def end_offset(self, tp: TopicPartition, committed_only: bool) -> int:
        """The log's end, or for a read_committed reader its first open transaction's first offset."""
        with self.lock:
            log = self._logs[tp.topic][tp.partition]
            if committed_only:
                for offset, entry in enumerate(log):
                    if entry.txn is not None and entry.txn.state == "open":
                        return offset
            return len(log)

    def group(self, name: str) -> _Group:
        """A group, created when first named."""
        with self.lock:
            return self._groups.setdefault(name, _Group(name))

    def commit_offsets(
        self,
        group: str,
        metadata: ConsumerGroupMetadata,
        offsets: dict[TopicPartition, int],
        *,
        revoking: bool = False,
    ) -> None:
        """Commit a member's offsets outside a transaction; a stale generation (or an armed fault) fails.

        A member still in the group may commit from its revoke callback with the generation it held: an eager
        member calls it before it sends its JoinGroup, while the broker still accepts that generation.
        """
        with self.changed:
            if revoking and any(m.member_id == metadata.member_id for m in self.group(group).members):
                metadata = metadata._replace(generation_id=self._groups[group].generation)
            self.check_commit(group, metadata)
            self._groups[group].committed.update(offsets)
            self.changed.notify_all()

    def check_commit(self, group: str, metadata: ConsumerGroupMetadata) -> None:
        """Raise CommitFailedError for an armed fault or a member of an older generation.

        A member the group dropped (generation -1, no id) is not fenced here, as it is not by a real broker when
        it commits offsets through a transaction; the runner must refuse to send them itself.
        """
        with self.lock:
            failure = self.take_commit_failure()
            if failure is not None:
                raise failure
            if metadata.generation_id >= 0 and not self.group(group).current(
                metadata.member_id, metadata.generation_id
            ):
                raise CommitFailedError("in-memory broker: the group has rebalanced since this member joined")

    def take_commit_failure(self) -> CommitFailedError | None:
        """The armed commit failure, used up; None when the commit may go through."""
        with self.lock:
            if not self.faults.commit_failures:
                return None
            self.faults.commit_failures -= 1
            return CommitFailedError("in-memory broker: the commit failed (armed fault)")

    def take_send_failure(self, topic: str) -> BaseException | None:
        """The armed failure for a send to `topic`, used up (raised here if armed `at_send`); None when the send
        goes through."""
        with self.lock:
            for i, (wanted, error, at_send) in enumerate(self.faults.send_failures):
                if wanted is None or wanted == topic:
                    del self.faults.send_failures[i]
                    if at_send:
                        raise error
                    return error
            return None

    def init_transactions(self, transactional_id: str, max_block_s: float) -> int:
        """Fence earlier producers with this id (aborting their open transaction); the new epoch."""
        with self.changed:
            self.faults.inits_waiting += 1
            try:
                if not self.changed.wait_for(lambda: not self.faults.transactions_held, max_block_s):
                    raise KafkaTimeoutError("in-memory broker: timeout expired while initializing transactional state")
            finally:
                self.faults.inits_waiting -= 1
            return self._new_epoch(transactional_id)

    def epoch(self, transactional_id: str) -> int:
        """The current epoch of a transactional id."""
        with self.lock:
            return self._epochs.get(transactional_id, 0)

    def begin(self, transactional_id: str) -> _Txn:
        """Open a transaction for an id."""
        with self.lock:
            txn = self._open[transactional_id] = _Txn(transactional_id)
            return txn

    def end(self, txn: _Txn, state: Literal["committed", "aborted"]) -> None:
        """Commit or abort a transaction: its writes become visible or are dropped, with its offsets."""
        with self.changed:
            txn.state = state
            if self._open.get(txn.transactional_id) is txn:
                del self._open[txn.transactional_id]
            if state == "committed":
                for group, offsets in txn.offsets.items():
                    self.group(group).committed.update(offsets)
            self.changed.notify_all()

    def _new_epoch(self, transactional_id: str) -> int:
        pending = self._open.get(transactional_id)
        if pending is not None:
            self.end(pending, "aborted")
        self._epochs[transactional_id] = self.epoch(transactional_id) + 1
        return self._epochs[transactional_id]


def _record(tp: TopicPartition, offset: int, entry: _Entry) -> ConsumerRecord:
    value_size = len(entry.value) if entry.value is not None else -1
    key_size = len(entry.key) if entry.key is not None else -1
    return ConsumerRecord(
        tp.topic, tp.partition, None, offset, entry.timestamp_ms, 0, entry.key, entry.value, entry.headers, None,
        key_size, value_size, -1,
    )  # fmt: skip


class _Sent:
    """A send's outcome, known at once (the in-memory broker answers synchronously)."""

    def __init__(self, metadata: RecordMetadata | None, error: BaseException | None) -> None:
        self._metadata, self._error = metadata, error

    def add_callback(self, fn: Any, *args: Any) -> _Sent:
        """Call `fn(*args, metadata)` if the send succeeded."""
        if self._error is None:
            fn(*args, self._metadata)
        return self

    def add_errback(self, fn: Any, *args: Any) -> _Sent:
        """Call `fn(*args, error)` if the send failed."""
        if self._error is not None:
            fn(*args, self._error)
        return self

    def get(self, timeout: float | None = None) -> RecordMetadata:
        """The record's metadata, or the send's error raised."""
        if self._error is not None:
            raise self._error
        return self._metadata

    def failed(self) -> bool:
        """Whether the send failed."""
        return self._error is not None


class InMemoryProducer:
    """A KafkaProducer stand-in: sends are written at once; transactions as the broker's protocol has them."""

    def __init__(self, broker: InMemoryBroker, transactional_id: str | None, max_block_s: float) -> None:
        self.broker = broker
        self.transactional_id = transactional_id
        self.max_block_s = max_block_s
        self.closed = False
        self._epoch: int | None = None
        self._txn: _Txn | None = None

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: Headers | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> _Sent:
        """Write a record (inside the open transaction for a transactional producer)."""
        if self.transactional_id is not None:
            self._check()
            if self._txn is None:
                raise IllegalStateError("in-memory broker: a transactional producer sends only in a transaction")
        error = self.broker.take_send_failure(topic)
        if error is not None:
            if self._txn is not None:
                self._txn.error = error
            return _Sent(None, error)
        return _Sent(self.broker.append(topic, key, value, headers or [], partition, self._txn), None)

    def flush(self, timeout: float | None = None) -> None:
        """Every send is written at once: nothing to wait for."""

    def close(self, timeout: float | None = None) -> None:
        """Close (an open transaction is left for the next incarnation's init to abort, as on a real broker)."""
        self.closed = True

    def init_transactions(self) -> None:
        """Take the transactional id over, fencing any earlier producer with it."""
        if self.transactional_id is None:
            raise IllegalStateError("in-memory broker: not a transactional producer")
        self._epoch = self.broker.init_transactions(self.transactional_id, self.max_block_s)

    def begin_transaction(self) -> None:
        """Open a transaction."""
        self._check()
        assert self.transactional_id is not None
        if self._txn is not None:
            raise IllegalStateError("in-memory broker: a transaction is already open")
        self._txn = self.broker.begin(self.transactional_id)

    def send_offsets_to_transaction(
        self, offsets: dict[TopicPartition, OffsetAndMetadata], metadata: ConsumerGroupMetadata
    ) -> None:
        """Add a group's offsets to the transaction; a stale member's make it abortable (CommitFailedError)."""
        txn = self._open_txn()
        try:
            self.broker.check_commit(metadata.group_id, metadata)
        except KafkaError as exc:
            txn.error = exc
            raise
        txn.offsets.setdefault(metadata.group_id, {}).update({tp: o.offset for tp, o in offsets.items()})

    def commit_transaction(self) -> None:
        """Commit: its writes become visible to read_committed readers and its offsets are committed."""
        txn = self._open_txn()
        if txn.error is not None:
            raise KafkaError(f"in-memory broker: the transaction must be aborted: {txn.error!r}")
        failure = self.broker.take_commit_failure()
        if failure is not None:
            txn.error = failure
            raise failure
        stall = self.broker.take_commit_stall()
        if stall is not None:
            # The caller's bound ran out; the transaction stays open (for the next init to abort) or committed.
            if stall:
                self.broker.end(txn, "committed")
            raise TransactionStalled("in-memory broker: committing the transaction did not finish (armed fault)")
        self.broker.end(txn, "committed")
        self._txn = None

    def abort_transaction(self) -> None:
        """Abort: its writes are never seen by read_committed readers, its offsets never committed."""
        txn = self._open_txn()
        self.broker.end(txn, "aborted")
        self._txn = None

    def _open_txn(self) -> _Txn:
        self._check()
        if self._txn is None:
            raise IllegalStateError("in-memory broker: no transaction is open")
        return self._txn

    def _check(self) -> None:
        if self.transactional_id is None or self._epoch is None:
            raise IllegalStateError("in-memory broker: transactions were not initialised")
        if self.broker.epoch(self.transactional_id) != self._epoch:
            raise ProducerFencedError("in-memory broker: a newer producer has this transactional id")


class InMemoryAdmin:
    """A KafkaAdminClient stand-in for creating and listing topics."""

    def __init__(self, broker: InMemoryBroker) -> None:
        self.broker = broker

    def list_topics(self) -> list[str]:
        """The topic names."""
        return sorted(self.broker.partition_counts())

    def create_topics(self, new_topics: Iterable[NewTopic], timeout_ms: int | None = None) -> None:
        """Create topics; TopicAlreadyExistsError for one that exists."""
        for topic in new_topics:
            if not self.broker.create_topic(topic.name, topic.num_partitions):
                raise TopicAlreadyExistsError(topic.name)

    def close(self) -> None:
        """Nothing to release."""


class InMemoryConsumer:
    """A KafkaConsumer stand-in: group membership with eager rebalances, positions, pauses and commits."""

    def __init__(self, broker: InMemoryBroker, member_id: str, config: dict[str, Any]) -> None:
        self.broker = broker
        self.member_id = member_id
        self.group_id: str | None = config.get("group_id")
        self._committed_only = config.get("isolation_level", "read_committed") == "read_committed"
        self._reset = config.get("auto_offset_reset", "latest")
        self._max_records = int(config.get("max_poll_records", 500))
        self._topics: set[str] = set()
        self._listener: ConsumerRebalanceListener | AsyncConsumerRebalanceListener | None = None
        self._generation = -1
        # Inside the revoke callback of a rebalance (see InMemoryBroker.commit_offsets).
        self._revoking = False
        self._assigned: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int] = {}
        self._delivered: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self.closed = False
        # Whether the last poll found nothing (see InMemoryBroker.drained).
        self.drained = False

    # ---- membership --------------------------------------------------------------------------------

    def subscribe(
        self,
        topics: Iterable[str] = (),
        pattern: str | None = None,
        listener: ConsumerRebalanceListener | AsyncConsumerRebalanceListener | None = None,
    ) -> None:
        """Join the group for `topics`; the assignment arrives at the next poll."""
        if self.group_id is None:
            raise IllegalStateError("in-memory broker: subscribing needs a group_id")
        self._topics, self._listener = set(topics), listener
        with self.broker.changed:
            group = self.broker.group(self.group_id)
            if self not in group.members:
                group.members.append(self)
            group.rebalance(self.broker.partition_counts())

    def subscription(self) -> set[str]:
        """The subscribed topics."""
        return set(self._topics)

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Take partitions by hand, outside any group."""
        self._assigned = list(partitions)

    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer holds now."""
        return set(self._assigned)

    def group_metadata(self) -> ConsumerGroupMetadata:
        """The membership snapshot a transaction's offsets are sent with."""
        joined = MemberState.STABLE if self._generation >= 0 else MemberState.UNJOINED
        member = self.member_id if self._generation >= 0 else ""
        return ConsumerGroupMetadata(self.group_id, self._generation, member, None, joined)

    def expelled(self) -> None:
        """Called by the broker when the group dropped this member: its membership is reset, as kafka-python's."""
        self._generation = -1

    def close(self, autocommit: bool = False, timeout_ms: int | None = None) -> None:
        """Leave the group (the others rebalance)."""
        self.closed = True
        if self.group_id is None:
            return
        with self.broker.changed:
            group = self.broker.group(self.group_id)
            if self in group.members:
                group.members.remove(self)
                group.rebalance(self.broker.partition_counts())
                self.broker.changed.notify_all()

    # ---- fetching ----------------------------------------------------------------------------------

    def poll(
        self, timeout_ms: int = 0, max_records: int | None = None, update_offsets: bool = True
    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Records from the assigned, unpaused partitions; waits up to `timeout_ms` for some."""
        with self.broker.lock:
            if self.broker.faults.poll_failures:
                raise self.broker.faults.poll_failures.pop(0)
        self._sync()
        deadline = time.monotonic() + timeout_ms / 1000
        with self.broker.changed:
            while True:
                batch = self._fetch(max_records or self._max_records)
                if batch or self._stale() or time.monotonic() >= deadline:
                    self.drained = not batch and not self._stale()
                    return batch
                self.broker.changed.wait(min(_POLL_STEP_S, max(0.0, deadline - time.monotonic())))

    def _stale(self) -> bool:
        return bool(self._topics) and self._generation != self.broker.group(self.group_id or "").generation

    def _sync(self) -> None:
        """Follow a rebalance (revoke everything, take the new assignment from the committed offsets), as an
        eager member does inside poll."""
        if not self._stale():
            return
        assert self.group_id is not None
        listener, old = self._listener, self._assigned
        if listener is not None:
            self._revoking = True
            try:
                _call_back(listener.on_partitions_revoked, old)
            finally:
                self._revoking = False
        with self.broker.lock:
            group = self.broker.group(self.group_id)
            if self not in group.members:
                group.members.append(self)
                group.rebalance(self.broker.partition_counts())
            self._generation = group.generation
            self._assigned = list(group.assignment.get(self.member_id, []))
            self._positions = {}
            self._paused &= set(self._assigned)
        if listener is not None:
            _call_back(listener.on_partitions_assigned, self._assigned)

    def _fetch(self, limit: int) -> dict[TopicPartition, list[ConsumerRecord]]:
        self._redeliver()
        batch: dict[TopicPartition, list[ConsumerRecord]] = {}
        for tp in self._assigned:
            if tp in self._paused or limit <= 0:
                continue
            records, after = self.broker.read(tp, self.position(tp), self._committed_only, limit)
            self._positions[tp] = after
            if records:
                batch[tp] = records
                limit -= len(records)
                self._delivered[tp] = max(self._delivered.get(tp, 0), records[-1].offset + 1)
        return batch

    def _redeliver(self) -> None:
        """Rewind to an armed record this consumer has delivered already (so it comes again)."""
        for tp, offset in list(self.broker.faults.redeliveries):
            if tp in self._assigned and self._delivered.get(tp, 0) > offset:
                self.broker.faults.redeliveries.discard((tp, offset))
                self._positions[tp] = min(self.position(tp), offset)

    # ---- positions and offsets ---------------------------------------------------------------------

    def position(self, tp: TopicPartition) -> int:
        """The next offset to fetch: the committed one, else by `auto_offset_reset`."""
        if tp not in self._positions:
            committed = self.committed(tp)
            if committed is not None:
                self._positions[tp] = committed
            elif self._reset == "earliest":
                self._positions[tp] = 0
            else:
                self._positions[tp] = self.broker.end_offset(tp, self._committed_only)
        return self._positions[tp]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Fetch from `offset` next."""
        self._positions[tp] = offset

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Fetch from the start next."""
        for tp in partitions or self._assigned:
            self._positions[tp] = 0

    def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset."""
        return None if self.group_id is None else self.broker.committed(self.group_id, tp)

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata] | None = None) -> None:
        """Commit offsets for the group; CommitFailedError when the group has rebalanced since the last poll."""
        assert self.group_id is not None
        wanted = {tp: o.offset for tp, o in offsets.items()} if offsets is not None else dict(self._positions)
        self.broker.commit_offsets(self.group_id, self.group_metadata(), wanted, revoking=self._revoking)

    def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """Each partition's end (for read_committed, its last stable offset)."""
        return {tp: self.broker.end_offset(tp, self._committed_only) for tp in partitions}

    def highwater(self, tp: TopicPartition) -> int:
        """The partition's end."""
        return self.broker.end_offset(tp, False)

    def pause(self, *partitions: TopicPartition) -> None:
        """Stop fetching from partitions."""
        self._paused.update(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        """Fetch from paused partitions again."""
        self._paused.difference_update(partitions)

    def paused(self) -> set[TopicPartition]:
        """The paused partitions."""
        return set(self._paused)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        """A topic's partition numbers, None if it does not exist."""
        count = self.broker.partition_counts().get(topic)
        return set(range(count)) if count else None

    def topics(self) -> set[str]:
        """Every topic."""
        return set(self.broker.partition_counts())


def _call_back(method: Callable[[list[TopicPartition]], Any], partitions: list[TopicPartition]) -> None:
    """Call a rebalance listener's method, running it to its end if it is a coroutine (an async listener)."""
    result = method(list(partitions))
    if inspect.isawaitable(result):
        asyncio.run(_awaited(result))


async def _awaited(awaitable: Awaitable[Any]) -> None:
    await awaitable
