"""The kafka-python workarounds' assumptions about the installed client: an upgrade that breaks one fails here."""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Iterator
from importlib.metadata import version
from types import SimpleNamespace
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.future import Future
from kafka.producer.transaction_manager import TransactionManager, TxnRequestHandler
from kafka.protocol.metadata import CoordinatorType
from kafka.structs import MemberState
from quartet_shared.producer import close_kafka_producer
from quartet_shared.runner import kafka_compat
from quartet_shared.runner.kafka_compat import ASSUMPTIONS, JOIN_STUCK_S, JoinWatch, break_waits, join_dropped


@pytest.fixture
def consumer() -> Iterator[KafkaConsumer]:
    # Nothing listens on port 1: building the client contacts no broker, and these tests need none.
    client = KafkaConsumer(bootstrap_servers="127.0.0.1:1", api_version=(2, 8), group_id="compat")
    try:
        yield client
    finally:
        client.close(autocommit=False)


def test_the_installed_client_is_the_minor_version_the_workarounds_were_written_for() -> None:
    assert version("kafka-python").split(".")[:2] == ["3", "0"]


def test_every_private_name_the_workarounds_use_has_the_shape_they_expect(consumer: KafkaConsumer) -> None:
    assert {name for _, name, _ in ASSUMPTIONS} == {
        "_coordinator",
        "_net",
        "REBALANCING",
        "_transaction_manager",
        "_sender",
        "_fetcher",
    }
    coordinator = consumer._coordinator
    assert coordinator.state == MemberState.UNJOINED
    assert not inspect.signature(coordinator.need_rejoin).parameters
    assert not inspect.signature(coordinator.request_rejoin).parameters
    assert inspect.iscoroutinefunction(coordinator._commit_offsets_sync_async)
    assert next(iter(inspect.signature(coordinator._commit_offsets_sync_async).parameters)) == "offsets"
    assert "timeout_ms" in inspect.signature(consumer._net.stop).parameters
    assert hasattr(MemberState, "REBALANCING")
    assert consumer._fetcher._paused_partition_records == {}
    assert callable(consumer._fetcher.PartitionRecords.drain)


def test_a_join_held_dropped_is_restarted(consumer: KafkaConsumer, monkeypatch: pytest.MonkeyPatch) -> None:
    consumer.subscribe(["compat"])
    coordinator = consumer._coordinator
    # The state kafka-python 3.0.12 was seen to leave: joined, rebalancing, and no rejoin pending. A join starts by
    # building its group protocols, which records the subscription joined; no private attribute is set by hand.
    coordinator.group_protocols()
    coordinator.state = MemberState.REBALANCING
    coordinator.rejoin_needed = False
    assert join_dropped(consumer)
    now = [100.0]
    monkeypatch.setattr(kafka_compat.time, "monotonic", lambda: now[0])
    watch = JoinWatch("compat")
    watch.check(consumer)
    now[0] += JOIN_STUCK_S + 0.1
    watch.check(consumer)
    assert watch.restarts == 1
    assert coordinator.need_rejoin()
    assert not join_dropped(consumer)


def test_stopping_the_io_loop_releases_a_call_that_would_wait_forever(consumer: KafkaConsumer) -> None:
    raised: list[BaseException] = []

    def wait_forever() -> None:
        try:
            consumer._net.run(consumer._manager.wait_for, Future(), None)
        except BaseException as exc:
            raised.append(exc)

    waiter = threading.Thread(target=wait_forever, daemon=True)
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive()
    break_waits(consumer)
    waiter.join(10)
    assert not waiter.is_alive()
    assert raised and isinstance(raised[0], KafkaError)


def test_the_transactional_calls_bounded_here_wait_with_a_timeout_and_say_whether_they_finished() -> None:
    # A transactional producer whose broker never answers: its init cannot finish, so nothing here reaches one.
    producer = KafkaProducer(
        bootstrap_servers="127.0.0.1:1", api_version=(2, 8), transactional_id="compat", max_block_ms=100
    )
    try:
        manager = producer._transaction_manager
        for name in ("send_offsets_to_transaction", "begin_commit", "begin_abort"):
            assert callable(getattr(manager, name))
        assert callable(producer._sender.wakeup)
        assert producer._sender._client.connected(1) is False
        assert manager.coordinator(CoordinatorType.TRANSACTION) is None
        assert manager._pending_requests == []
        assert isinstance(manager._pending_requests_sort_id, int)
        assert manager.has_in_flight_transactional_request() is False
        assert manager.has_partitions_to_add() is False
        result = manager.initialize_transactions()
        assert "timeout_ms" in inspect.signature(result.wait).parameters
        assert result.wait(timeout_ms=50) is False
    finally:
        close_kafka_producer(producer, 0)


class _Answered(TxnRequestHandler):  # type: ignore[misc]
    """A transactional request the coordinator answers with a retriable error until `done_at` (monotonic)."""

    priority = 2

    def __init__(self, manager: TransactionManager, done_at: float) -> None:
        super().__init__(manager)
        self.done_at = done_at

    def handle_response(self, response: Any) -> None:
        if time.monotonic() < self.done_at:
            self.reenqueue()
        else:
            self._result.done()


def _sender(manager: TransactionManager, handler: _Answered) -> None:
    """kafka-python 3.0.12's sender, as far as a request's way goes: pop it, back off if retried, send, answer."""
    while not handler.result.is_done:
        popped = manager.next_request_handler(False)
        if popped is None:
            time.sleep(0.001)
            continue
        if popped.is_retry:
            time.sleep(0.1)
        correlation = manager.next_in_flight_request_correlation_id()
        time.sleep(0.003)
        popped.on_complete(correlation, SimpleNamespace())


def _producer(manager: TransactionManager, handler: _Answered, *, coordinator: str, connected: bool) -> Any:
    """The client parts a bounded commit reads, around kafka-python's own transaction manager."""
    manager.coordinator = lambda kind: coordinator if kind == CoordinatorType.TRANSACTION else None
    manager.begin_commit = lambda: handler.result
    client = SimpleNamespace(connected=lambda node: connected)
    return SimpleNamespace(_transaction_manager=manager, _sender=SimpleNamespace(_client=client, wakeup=lambda: None))


def _request(done_in_s: float) -> tuple[TransactionManager, _Answered]:
    manager = TransactionManager(transactional_id="compat", transaction_timeout_ms=60_000)
    handler = _Answered(manager, time.monotonic() + done_in_s)
    manager._enqueue_request(handler)
    return manager, handler


def _timed_out(timeout_s: float) -> None:
    """A flush that never finishes."""
    time.sleep(timeout_s)
    raise KafkaTimeoutError("Timeout waiting for future")


@pytest.mark.parametrize(
    ("taken", "connected", "why"),
    [
        (False, False, "node coordinator-3, is not connected"),
        # The sender took the request and never queued it again (3.0.12's except branch).
        (True, True, "the client dropped its request"),
    ],
)
def test_a_call_that_cannot_go_on_ends_long_before_its_bound(taken: bool, connected: bool, why: str) -> None:
    manager, handler = _request(done_in_s=60)
    if taken:
        manager.next_request_handler(False)
    producer = _producer(manager, handler, coordinator="coordinator-3", connected=connected)
    started = time.monotonic()
    with pytest.raises(kafka_compat.TransactionStalled, match=why):
        kafka_compat.end_transaction_within(producer, commit=True, timeout_s=30.0)
    assert time.monotonic() - started < 5.0


def test_a_request_retried_through_a_coordinators_errors_is_waited_for() -> None:
    """Between retries the request is neither queued nor in flight for 100 ms at a time, but is queued again."""
    manager, handler = _request(done_in_s=3.0)
    threading.Thread(target=_sender, args=(manager, handler), daemon=True).start()
    producer = _producer(manager, handler, coordinator="coordinator-3", connected=True)
    kafka_compat.end_transaction_within(producer, commit=True, timeout_s=20.0)
    assert handler.result.is_done


def test_a_call_whose_coordinator_is_connected_and_queued_waits_its_whole_bound() -> None:
    manager, handler = _request(done_in_s=60)
    producer = _producer(manager, handler, coordinator="coordinator-3", connected=True)
    started = time.monotonic()
    with pytest.raises(kafka_compat.TransactionStalled, match="within 2 s"):
        kafka_compat.end_transaction_within(producer, commit=True, timeout_s=2.0)
    assert time.monotonic() - started >= 2.0


def test_a_flush_whose_coordinator_is_out_of_reach_ends_long_before_its_bound() -> None:
    """A record is sent only once its partition is added to the transaction, by a request to the coordinator."""
    manager, handler = _request(done_in_s=60)
    producer = _producer(manager, handler, coordinator="coordinator-2", connected=False)
    started = time.monotonic()
    with pytest.raises(kafka_compat.TransactionStalled, match=r"flushing.* node coordinator-2"):
        kafka_compat.flush_within(producer, _timed_out, 30.0)
    assert time.monotonic() - started < 5.0


def test_a_flush_whose_partitions_wait_on_a_dropped_request_ends_long_before_its_bound() -> None:
    manager, handler = _request(done_in_s=60)
    manager.next_request_handler(False)
    manager.has_partitions_to_add = lambda: True
    producer = _producer(manager, handler, coordinator="coordinator-2", connected=True)
    started = time.monotonic()
    with pytest.raises(kafka_compat.TransactionStalled, match="dropped"):
        kafka_compat.flush_within(producer, _timed_out, 30.0)
    assert time.monotonic() - started < 5.0


def test_a_flush_waiting_on_partition_leaders_alone_waits_its_whole_bound() -> None:
    """Nothing for the coordinator to do: the records wait on their leaders, through an election perhaps."""
    manager, handler = _request(done_in_s=60)
    manager.next_request_handler(False)
    producer = _producer(manager, handler, coordinator="coordinator-3", connected=True)
    started = time.monotonic()
    with pytest.raises(kafka_compat.TransactionStalled, match="within 2 s"):
        kafka_compat.flush_within(producer, _timed_out, 2.0)
    assert time.monotonic() - started >= 2.0
