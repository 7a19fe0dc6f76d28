"""Workarounds for kafka-python 3.0 (pinned in shared/pyproject.toml), the one module reaching into its privates.

Five defects of the client are worked around here: a call into the consumer's I/O loop that never returns (the
stall watchdog breaks it, and the runner rebuilds its consumer), a group join the client finishes and then
forgets (the runner asks for a rejoin), transactional calls that wait with no bound on a coordinator that
is gone (they are bounded here, and the commit protocol replaces the producer), a transactional request the
sender drops when its coordinator cannot be reached (`SenderClient` lets the sender retry it), and a resumed
partition that is never fetched again (its parked records are dropped here). One limit too: a rebalance
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
from collections.abc import Iterator
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaConnectionError, KafkaTimeoutError, UnknownBrokerIdError
from kafka.net.compat import KafkaNetClient
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
        "a result whose wait(timeout_ms) says whether it finished",
    ),
    ("KafkaProducer", "_sender", "a sender thread whose wakeup() sends what was just queued"),
    (
        "Sender",
        "_maybe_send_pending_request",
        "sends the next transactional request, retrying it when await_ready(coordinator) is False",
    ),
    (
        "KafkaConsumer",
        "_fetcher",
        "a Fetcher whose _paused_partition_records maps a paused partition to its parked PartitionRecords "
        "(drain() releases them), put back only when its in-line slot is None",
    ),
)


class SenderClient(KafkaNetClient):  # type: ignore[misc]
    """kafka-python's network client, whose await_ready answers False for a node it cannot reach, as the sender expects.

    kafka-python 3.0.12's sender asks `if not await_ready(coordinator)` to look the coordinator up again and queue
    the request anew, but this client raises instead; the sender's except branch then looks the coordinator up
    and leaves the request dropped. A SIGKILLed transaction coordinator thus left the flush, the offsets or the
    commit waiting out their whole bound (up to 19.4 s to recover, against 8.6-10.4 s for a leader alone).
    The sender is the only caller of await_ready in the producer. While the coordinator stays out of reach the
    sender asks for it again every retry backoff (100 ms), until the controller fences the dead node (6 s) or the
    runner's stall bound (8 s) replaces the producer. Upstream's sender rewrite (dpkp/kafka-python #3110,
    unreleased) retries; this class can go with the release that has it.
    """

    def await_ready(self, node_id: Any, timeout_ms: int = 30000) -> bool:
        """Whether the node is ready for a request, waiting up to `timeout_ms` for its connection."""
        try:
            return bool(super().await_ready(node_id, timeout_ms=timeout_ms))
        except (KafkaConnectionError, UnknownBrokerIdError) as exc:
            # Refused, or gone from the metadata (a fenced broker is): either way, find the coordinator again.
            log.debug("node %s is out of reach (%s); the sender looks its coordinator up again", node_id, exc)
            return False


class TransactionStalled(KafkaTimeoutError):  # type: ignore[misc]
    """A transactional call did not finish within its bound: the producer is waiting on a coordinator that is gone."""


def send_offsets_within(producer: KafkaProducer, offsets: Any, membership: Any, timeout_s: float) -> None:
    """send_offsets_to_transaction, raising TransactionStalled when it has not finished after `timeout_s`."""
    manager = getattr(producer, "_transaction_manager", None)
    if manager is None:
        # Not kafka-python's producer (the in-memory broker's, whose calls return at once): nothing to bound.
        producer.send_offsets_to_transaction(offsets, membership)
        return
    _wait(producer, manager.send_offsets_to_transaction(offsets, membership), timeout_s, "sending the offsets")


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
    _wait(producer, result, timeout_s, "committing the transaction" if commit else "aborting the transaction")


def _wait(producer: KafkaProducer, result: Any, timeout_s: float, what: str) -> None:
    producer._sender.wakeup()
    if not result.wait(timeout_ms=timeout_s * 1000):
        raise TransactionStalled(f"{what} did not finish within {timeout_s:g} s")


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
