"""Workarounds for kafka-python 3.0 (pinned in shared/pyproject.toml), the one module reaching into its privates.

Four defects of the client are worked around here: a call into the consumer's I/O loop that never returns (the
stall watchdog breaks it, and the runner rebuilds its consumer), a group join the client finishes and then
forgets (the runner asks for a rejoin), transactional requests dropped when their coordinator cannot be reached,
so that their calls would wait for ever (they are bounded here and end once the coordinator is out of reach, and
the commit protocol replaces the producer), and a resumed partition that is
never fetched again (its parked records are dropped here). One limit too: a rebalance
callback runs on the I/O loop, where the blocking commit cannot. `ASSUMPTIONS` lists every private name used,
so that a test fails on an upgrade that moves them instead of the workarounds silently doing nothing.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaTimeoutError
from kafka.protocol.metadata import CoordinatorType
from kafka.structs import MemberState, OffsetAndMetadata

from quartet_shared.metrics import CONSUMER_STALLS

log = logging.getLogger(__name__)

JOIN_STUCK_S = 3.0

# (owner, private attribute, what it must be): checked against the installed client by the tests.
ASSUMPTIONS = (
    (
        "KafkaConsumer",
        "_coordinator",
        "a ConsumerCoordinator with state, need_rejoin(), request_rejoin() and the coroutine "
        "_commit_offsets_sync_async(offsets)",
    ),
    ("KafkaConsumer", "_net", "an I/O loop whose stop(timeout_ms) fails every call waiting on it"),
    ("MemberState", "REBALANCING", "the coordinator's state between a revoke and a finished join"),
    (
        "KafkaProducer",
        "_transaction_manager",
        "send_offsets_to_transaction, begin_commit and begin_abort returning "
        "a result whose wait(timeout_ms) says whether it finished; coordinator(kind), has_partitions_to_add(), "
        "has_in_flight_transactional_request(); _pending_requests, the queue of requests not yet sent, and "
        "_pending_requests_sort_id, counting every request queued",
    ),
    (
        "KafkaProducer",
        "_sender",
        "a sender thread whose wakeup() sends what was just queued and whose _client.connected(node_id) says "
        "whether it holds a connection to a node",
    ),
    (
        "KafkaConsumer",
        "_fetcher",
        "a Fetcher whose _paused_partition_records maps a paused partition to its parked PartitionRecords "
        "(drain() releases them), put back only when its in-line slot is None",
    ),
)


# kafka-python 3.0.12's sender drops a transactional request whose coordinator it cannot connect to: its
# await_ready raises rather than returning False, and the except branch looks the coordinator up again but leaves
# the loop with a target node set, so the request is never queued again (Java's Sender retries it); the call's
# result never completes. A coordinator SIGKILLed mid-commit then held the batch for the whole stall bound (a
# leader-and-coordinator kill recovered in 15-18 s when the commit began once the node was fenced). The wait is
# checked in slices instead, and ends once the call has been stuck this long (its coordinator not connected, or
# nothing queued or in flight for it) with no request queued meanwhile: a live node reconnects, and a queued
# request goes out, in milliseconds, and a request retried after an error (through a coordinator's election or
# load, 100 ms apart) is queued again each time.
WAIT_SLICE_S = 0.25
UNREACHABLE_S = 1.0


class TransactionStalled(KafkaTimeoutError):  # type: ignore[misc]
    """A transactional call did not finish within its bound: the producer is waiting on a coordinator that is gone."""


def send_offsets_within(producer: KafkaProducer, offsets: Any, membership: Any, timeout_s: float) -> None:
    """send_offsets_to_transaction, raising TransactionStalled when it has not finished after `timeout_s`."""
    manager = getattr(producer, "_transaction_manager", None)
    if manager is None:
        # Not kafka-python's producer (the in-memory broker's, whose calls return at once): nothing to bound.
        producer.send_offsets_to_transaction(offsets, membership)
        return
    result = manager.send_offsets_to_transaction(offsets, membership)
    what, both = "sending the offsets", (CoordinatorType.TRANSACTION, CoordinatorType.GROUP)
    _wait(producer, lambda slice_s: result.wait(timeout_ms=slice_s * 1000), timeout_s, what, coordinators=both)


def end_transaction_within(producer: KafkaProducer, *, commit: bool, timeout_s: float) -> None:
    """commit_transaction (or abort_transaction), raising TransactionStalled when not finished after `timeout_s`.

    kafka-python 3.0.12 asks for the transaction coordinator once; told a node that was just SIGKILLed (not yet
    fenced by the controller), it keeps sending to it and its own calls wait with no bound, until the delivery
    timeout (120 s) fails the transaction. A producer built afresh asks again and finds the live coordinator.
    """
    manager = getattr(producer, "_transaction_manager", None)
    if manager is None:
        (producer.commit_transaction if commit else producer.abort_transaction)()
        return
    result = manager.begin_commit() if commit else manager.begin_abort()
    what = "committing the transaction" if commit else "aborting the transaction"
    _wait(producer, lambda slice_s: result.wait(timeout_ms=slice_s * 1000), timeout_s, what)


def flush_within(producer: KafkaProducer, flush: Callable[[float], None], timeout_s: float) -> None:
    """Call `flush` (given a timeout in seconds) until it returns, raising TransactionStalled as the calls above."""

    def flushed(slice_s: float) -> bool:
        try:
            flush(slice_s)
        except KafkaTimeoutError:
            return False
        return True

    if getattr(producer, "_transaction_manager", None) is None:
        flush(timeout_s)
        return
    _wait(producer, flushed, timeout_s, "flushing the transaction's records", flushing=True)


def _wait(
    producer: KafkaProducer,
    finished: Callable[[float], bool],
    timeout_s: float,
    what: str,
    *,
    coordinators: tuple[CoordinatorType, ...] = (CoordinatorType.TRANSACTION,),
    flushing: bool = False,
) -> None:
    """Wait in slices until `finished(slice_s)`, ending early once the call is stuck for UNREACHABLE_S."""
    producer._sender.wakeup()
    deadline = time.monotonic() + timeout_s
    stuck_since: float | None = None
    queued = producer._transaction_manager._pending_requests_sort_id
    while not finished(max(min(WAIT_SLICE_S, deadline - time.monotonic()), 0)):
        now = time.monotonic()
        if now >= deadline:
            raise TransactionStalled(f"{what} did not finish within {timeout_s:g} s")
        why = stuck(producer, coordinators, flushing=flushing)
        queued, before = producer._transaction_manager._pending_requests_sort_id, queued
        if why is None or queued != before:
            stuck_since = None
        elif stuck_since is None:
            stuck_since = now
        elif now - stuck_since >= UNREACHABLE_S:
            raise TransactionStalled(f"{what}: {why}")


def stuck(producer: KafkaProducer, coordinators: tuple[CoordinatorType, ...], *, flushing: bool) -> str | None:
    """Why the producer's transaction cannot go on (a coordinator not connected, a request dropped), or None.

    A flush waits on the partition leaders too (through an election, say), so it is stuck on a dropped request
    only while its records' partitions wait to be added to the transaction.
    """
    manager, client = producer._transaction_manager, producer._sender._client
    for kind in coordinators:
        node = manager.coordinator(kind)
        if node is not None and not client.connected(node):
            # kafka-python names a coordinator's connection apart from the node's own ("coordinator-3").
            return f"its coordinator, node {node}, is not connected"
    # A dropped request leaves nothing queued or in flight while the call, or the partitions its records wait to
    # add, still waits on one (and the coordinator found again is connected only once something is sent to it).
    idle = not manager._pending_requests and not manager.has_in_flight_transactional_request()
    if idle and (not flushing or manager.has_partitions_to_add()):
        return "the client dropped its request to the coordinator"
    return None


async def commit_in_rebalance(consumer: KafkaConsumer, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
    """Commit offsets from an async rebalance callback, before the member rejoins with a new generation.

    kafka-python 3.0 runs rebalance callbacks on the consumer's I/O loop, where the blocking commit() refuses to
    run (it would wait on the loop it runs on); its own synchronous commit is a coroutine there, to be awaited.
    """
    commit = getattr(getattr(consumer, "_coordinator", None), "_commit_offsets_sync_async", None)
    if commit is None:
        # Not kafka-python's consumer (the in-memory broker's, which calls back on the polling thread).
        consumer.commit(offsets=offsets)
        return
    await commit(offsets)


def resume(consumer: KafkaConsumer, partitions: list[TopicPartition]) -> None:
    """consumer.resume(), and drop the records the client parked for those partitions while they were paused.

    kafka-python 3.0.12 parks the parsed records of a partition paused while they were next in line (its port of
    KAFKA-7548), and fetches nothing more for a partition with parked records. It puts them back only when its
    in-line slot is None, but once any partition's records were drained that slot holds an empty object, not
    None: the resumed partition is never fetched again (a retry record waited for ever behind it, seen under
    CPU load, when another partition's records arrived during the pause). The runner seeks a partition to the
    record it waits for before pausing it, so what was parked is behind that position anyway: dropped, it is
    fetched again from the position.
    """
    consumer.resume(*partitions)
    drop_parked(consumer, partitions)


def drop_parked(consumer: KafkaConsumer, partitions: list[TopicPartition]) -> None:
    """Drop the records kafka-python parked for `partitions` while they were paused (see `resume`)."""
    parked = getattr(getattr(consumer, "_fetcher", None), "_paused_partition_records", None)
    if parked is None:
        # Not kafka-python's consumer (the in-memory broker's, which parks nothing).
        return
    for tp in partitions:
        records = parked.pop(tp, None)
        if records is not None:
            records.drain()


def join_dropped(consumer: KafkaConsumer) -> bool:
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


def break_waits(consumer: KafkaConsumer) -> None:
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


class JoinWatch:
    """Asks for a rejoin when the client has held a dropped join for longer than a real join takes."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.restarts = 0
        self._stuck_since: float | None = None

    def reset(self) -> None:
        """Forget what was seen of the previous consumer."""
        self._stuck_since = None

    def check(self, consumer: KafkaConsumer) -> None:
        """Look at the consumer once (after each poll)."""
        if not join_dropped(consumer):
            self._stuck_since = None
            return
        now = time.monotonic()
        # The client passes through this state for an instant when a join succeeds; held for seconds, it is stuck.
        if self._stuck_since is None or now - self._stuck_since < JOIN_STUCK_S:
            self._stuck_since = self._stuck_since or now
            return
        log.warning("the group join was dropped half-way; asking to rejoin", extra={"group": self.group})
        self.restarts += 1
        CONSUMER_STALLS.labels(self.group, "join").inc()
        consumer._coordinator.request_rejoin()
        self._stuck_since = None


class StallWatchdog:
    """Breaks a Kafka call of the runner's thread that has not returned within the stall timeout."""

    def __init__(self, group: str, timeout_s: float) -> None:
        self.group = group
        self.timeout_s = timeout_s
        self.stalls = 0
        self.stalled = threading.Event()
        self.consumer: KafkaConsumer | None = None
        # When the runner's thread entered the Kafka call it is in (None outside one).
        self._call_since: float | None = None

    @contextlib.contextmanager
    def call(self) -> Iterator[None]:
        """Mark a client call the watchdog may break if it never returns."""
        self._call_since = time.monotonic()
        try:
            yield
        finally:
            self._call_since = None

    def progress(self) -> None:
        """Note progress inside a long call (reading a changelog in a rebalance callback is not a stall)."""
        if self._call_since is not None:
            self._call_since = time.monotonic()

    def start(self) -> threading.Event:
        """Watch the calling thread from a daemon thread until the returned event is set."""
        finished = threading.Event()
        threading.Thread(
            target=self._watch,
            args=(threading.get_ident(), finished),
            name=f"consumer-watchdog-{self.group}",
            daemon=True,
        ).start()
        return finished

    def _watch(self, runner_thread: int, finished: threading.Event) -> None:
        while not finished.wait(min(1.0, self.timeout_s / 4)):
            since, consumer = self._call_since, self.consumer
            if since is None or consumer is None or self.stalled.is_set():
                continue
            waited = time.monotonic() - since
            if waited >= self.timeout_s:
                self._break(runner_thread, consumer, waited)

    def _break(self, runner_thread: int, consumer: KafkaConsumer, waited: float) -> None:
        frame = sys._current_frames().get(runner_thread)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "(no frame)"
        log.error(
            "a Kafka call has not returned; rebuilding the consumer",
            extra={"group": self.group, "waited_s": round(waited, 1), "stack": stack},
        )
        self.stalls += 1
        CONSUMER_STALLS.labels(self.group, "call").inc()
        self.stalled.set()
        break_waits(consumer)
