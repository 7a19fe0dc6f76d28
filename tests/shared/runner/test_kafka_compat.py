"""The kafka-python workarounds' assumptions about the installed client: an upgrade that breaks one fails here."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator
from importlib.metadata import version
from types import SimpleNamespace

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from kafka.future import Future
from kafka.net.compat import KafkaNetClient
from kafka.producer.sender import Sender
from kafka.producer.transaction_manager import TransactionManager
from kafka.structs import MemberState
from quartet_shared.clients import producer_config
from quartet_shared.producer import close_kafka_producer
from quartet_shared.runner import kafka_compat
from quartet_shared.runner.kafka_compat import ASSUMPTIONS, JOIN_STUCK_S, JoinWatch, break_waits, join_dropped
from quartet_shared.settings import KernelSettings


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
        "_maybe_send_pending_request",
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
        result = manager.initialize_transactions()
        assert "timeout_ms" in inspect.signature(result.wait).parameters
        assert result.wait(timeout_ms=50) is False
    finally:
        close_kafka_producer(producer, 0)


@pytest.mark.parametrize(
    "coordinator",
    [
        "bootstrap-0",  # a known node that refuses the connection: a SIGKILLed broker
        3,  # a node gone from the metadata: the same broker once the controller fenced it
    ],
)
@pytest.mark.parametrize(("client_class", "kept"), [(KafkaNetClient, False), (kafka_compat.SenderClient, True)])
def test_a_transactional_request_whose_coordinator_is_out_of_reach_is_queued_again(
    coordinator: object, client_class: type[KafkaNetClient], kept: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kafka-python's own sender, with the stock client (which drops the request: remove SenderClient once it
    keeps it) and with SenderClient (which makes it look the coordinator up and queue the request again)."""
    client = client_class(bootstrap_servers=["127.0.0.1:1"], api_version=(2, 8), request_timeout_ms=200)
    try:
        manager = TransactionManager(transactional_id="compat", transaction_timeout_ms=60_000)
        monkeypatch.setattr(manager, "coordinator", lambda kind: coordinator)
        manager.initialize_transactions()
        sender = Sender(client, None, SimpleNamespace(has_incomplete=False), transaction_manager=manager)
        assert sender._maybe_send_pending_request()
        queued = sorted(type(handler).__name__ for _, _, handler in manager._pending_requests)
        expected = ["FindCoordinatorHandler", "InitProducerIdHandler"] if kept else ["FindCoordinatorHandler"]
        assert queued == expected
    finally:
        client.close()


def test_every_producer_the_kernel_builds_uses_the_sender_client() -> None:
    assert producer_config(KernelSettings())["kafka_client"] is kafka_compat.SenderClient
