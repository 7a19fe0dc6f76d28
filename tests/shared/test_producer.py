"""The kernel producer against the real broker: its metrics, and a refused record surfacing at flush."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError
from quartet_contracts.envelope import Envelope, EventTooLarge
from quartet_contracts.topics import TopicSpec
from quartet_shared.metrics import PRODUCE_ERRORS, PRODUCED
from quartet_shared.producer import ProduceFailed, Producer
from quartet_shared.runner import commit as commit_module
from quartet_shared.runner.commit import Transactional
from quartet_shared.runner.model import BatchState
from quartet_shared.settings import KernelSettings
from quartet_shared.testing.broker import InMemoryBroker
from quartet_shared.topics import ensure_topics
from quartet_tools.harness.cluster import ClusterServers

from tests.support.effects import wait_until

pytestmark = pytest.mark.integration


def small_topic(settings: KernelSettings, name: str, max_bytes: int = 1000) -> None:
    """A topic whose broker refuses records over `max_bytes`."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        admin.create_topics([NewTopic(name, 1, 1, topic_configs={"max.message.bytes": str(max_bytes)})])
    finally:
        admin.close()


@pytest.fixture
def producer(settings: KernelSettings) -> Iterator[Producer]:
    p = Producer(settings)
    yield p
    p.close()


def _value(metric: object, topic: str) -> float:
    return float(metric.labels(topic)._value.get())  # type: ignore[attr-defined]


def test_sends_are_counted_per_topic(settings: KernelSettings, producer: Producer, unique: str) -> None:
    topic = f"counted.{unique}"
    ensure_topics(settings, [TopicSpec(topic, "")])
    before = _value(PRODUCED, topic)
    env = Envelope(type="t", source="/tests", data={"n": 1})
    producer.send_confirmed(topic, env, timeout_s=30)
    for _ in range(4):
        producer.send(topic, env)
    producer.flush()
    assert _value(PRODUCED, topic) == before + 5
    labels = {s.labels["topic"] for m in PRODUCED.collect() for s in m.samples}
    assert all(isinstance(t, str) and "RecordMetadata" not in t for t in labels)


def test_a_record_the_broker_refuses_fails_the_flush(settings: KernelSettings, producer: Producer, unique: str) -> None:
    topic = f"small.{unique}"
    small_topic(settings, topic)
    producer.send_confirmed(topic, Envelope(type="t", source="/tests", data={"n": 1}), timeout_s=30)
    producer.send(topic, Envelope(type="t", source="/tests", data={"pad": "x" * 5000}))
    with pytest.raises(ProduceFailed, match="1 record"):
        producer.flush()
    assert _value(PRODUCE_ERRORS, topic) == 1
    # The failure is reported once, and the producer carries on: later flushes answer for later sends only.
    producer.send_confirmed(topic, Envelope(type="t", source="/tests", data={"n": 2}), timeout_s=30)
    producer.send(topic, Envelope(type="t", source="/tests", data={"n": 3}))
    producer.flush()


def test_an_event_over_the_kernel_bound_is_refused_before_the_broker_sees_it(
    settings: KernelSettings, unique: str
) -> None:
    topic = f"bounded.{unique}"
    ensure_topics(settings, [TopicSpec(topic, "")])
    bounded = Producer(settings.model_copy(update={"max_event_bytes": 2000}))
    try:
        before = _value(PRODUCED, topic)
        big = Envelope(type="quartet.t.Big.v1", source="/tests", subject="j1", data={"pad": "x" * 3000})
        with pytest.raises(EventTooLarge, match=r"event quartet.t.Big.v1 for job j1 is \d+ bytes, limit 2000"):
            bounded.send(topic, big)
        assert _value(PRODUCED, topic) == before
        bounded.send_confirmed(topic, Envelope(type="t", source="/tests", data={"n": 1}), timeout_s=30)
    finally:
        bounded.close()
    assert _value(PRODUCED, topic) == before + 1


@pytest.mark.fault
def test_close_with_records_pending_fails_them_and_stops_the_io_thread(cluster: ClusterServers, unique: str) -> None:
    """A record the leader never acknowledges (black-holed) does not make close raise or leave kafka-python's
    I/O thread retrying it: close returns within its bound and the record's future fails."""
    settings = cluster.settings()
    topic = cluster.new_topic(f"pending.{unique}", partitions=1)
    before = set(threading.enumerate())
    producer = Producer(settings)
    producer.send_confirmed(topic, Envelope(type="t", source="/tests", data={"n": 1}), timeout_s=30)
    io_threads = set(threading.enumerate()) - before
    cluster.proxies.add_toxic(cluster.proxy(cluster.leader(topic, 0)), "blackhole", "timeout", {"timeout": 0})
    pending = producer.send(topic, Envelope(type="t", source="/tests", data={"n": 2}))
    started = time.monotonic()
    producer.close(timeout_s=2)
    assert time.monotonic() - started < 15, "close waited past its bound"
    assert io_threads and not any(t.is_alive() for t in io_threads), "the producer's I/O thread outlived close"
    assert pending.is_done and pending.failed()


def _sockets() -> set[tuple[str, str]]:
    """This process's open sockets, as (fd, inode) pairs: a reused fd number is not the same socket."""
    found: set[tuple[str, str]] = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add((fd, target))
    return found


def test_a_transactional_producer_replaced_with_records_queued_leaves_no_thread_or_socket(
    settings: KernelSettings, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the abort fails (kafka-python stuck after a split batch, say) the runner replaces the producer while
    its records are still queued. A plain close(timeout=0) raised on its flush there and left the I/O thread and
    its broker connections running for the life of the process; the old producer must be gone, records failed."""
    topic = f"replaced.{unique}"
    ensure_topics(settings, [TopicSpec(topic, "")])
    threads, sockets = set(threading.enumerate()), _sockets()
    protocol = Transactional(settings, f"replaced-{unique}")
    protocol.open(threading.Event())
    old = protocol.producer
    io_threads, old_sockets = set(threading.enumerate()) - threads, _sockets() - sockets
    assert io_threads and old_sockets
    protocol.begin()
    queued = old.send(topic, Envelope(type="t", source="/tests", data={"n": 1}))  # lingers: the batch flushes it

    def stuck(producer: object, *, commit: bool, timeout_s: float) -> None:
        raise KafkaError("the abort cannot complete")

    # The protocol ends its transactions through the bounded helper, so that is where the abort fails.
    monkeypatch.setattr(commit_module, "end_transaction_within", stuck)
    try:
        protocol.abandon(InMemoryBroker().consumer(settings), BatchState(), keep_finished=False, fresh_producer=False)
        assert protocol.producer is not old
        wait_until(lambda: not any(t.is_alive() for t in io_threads), 5, "the old producer's I/O thread to end")
        assert not old_sockets & _sockets(), "the old producer's broker connections outlived it"
        wait_until(lambda: queued.is_done, 5, "the queued record's future to complete")
        assert queued.failed()
    finally:
        protocol.close()
