"""The in-memory broker keeps Kafka's promises the runner relies on: logs with offsets, group commits and
generations, transactional visibility, fencing, and each fault hook firing once."""

from __future__ import annotations

from typing import Any

import pytest
from kafka import TopicPartition
from kafka.admin import NewTopic
from kafka.errors import (
    CommitFailedError,
    KafkaError,
    KafkaTimeoutError,
    ProducerFencedError,
    TopicAlreadyExistsError,
)
from kafka.structs import OffsetAndMetadata
from quartet_contracts.envelope import Envelope
from quartet_contracts.topics import TopicSpec
from quartet_shared.producer import ProduceFailed, Producer
from quartet_shared.settings import KernelSettings
from quartet_shared.testing.broker import InMemoryBroker, InMemoryConsumer, InMemoryProducer
from quartet_shared.topics import ensure_topics

SETTINGS = KernelSettings()
T0 = TopicPartition("t", 0)


def _env(n: int) -> Envelope:
    return Envelope(type="quartet.test.Item.v1", source="/test", data={"n": n})


def _member(broker: InMemoryBroker, **config: Any) -> InMemoryConsumer:
    consumer = broker.consumer(SETTINGS, group_id="g", auto_offset_reset="earliest", **config)
    consumer.subscribe(["t"])
    return consumer


def _txn_producer(broker: InMemoryBroker, tid: str = "tx") -> InMemoryProducer:
    producer = broker.producer(SETTINGS, transactional_id=tid)
    producer.init_transactions()
    return producer


def test_each_partition_has_its_own_offsets_and_a_key_always_lands_on_the_same_partition() -> None:
    broker = InMemoryBroker(partitions=3)
    producer = broker.producer(SETTINGS)
    placed = [producer.send("t", b"v", key=b"k").get() for _ in range(3)]
    assert {(m.partition, m.offset) for m in placed} == {(placed[0].partition, o) for o in range(3)}
    assert producer.send("t", b"v", partition=(placed[0].partition + 1) % 3).get().offset == 0


def test_a_group_reads_from_its_committed_offset_and_each_group_has_its_own() -> None:
    broker = InMemoryBroker()
    for n in range(5):
        broker.publish("t", _env(n))
    first = _member(broker)
    assert [r.offset for r in first.poll(max_records=3)[T0]] == [0, 1, 2]
    first.commit({T0: OffsetAndMetadata(3, "", -1)})
    first.close()
    again = _member(broker)
    assert [r.offset for r in again.poll()[T0]] == [3, 4]
    other = broker.consumer(SETTINGS, group_id="other", auto_offset_reset="earliest")
    other.subscribe(["t"])
    assert len(other.poll()[T0]) == 5
    assert (broker.committed("g", T0), broker.committed("other", T0)) == (3, None)


def test_a_read_committed_reader_sees_a_transaction_only_once_it_commits_and_an_aborted_one_never() -> None:
    broker = InMemoryBroker()
    producer = _txn_producer(broker)
    producer.begin_transaction()
    producer.send("t", b"aborted")
    producer.abort_transaction()
    producer.begin_transaction()
    producer.send("t", b"committed")
    assert broker.records("t") == []
    assert [r.value for r in broker.records("t", committed_only=False)] == [b"aborted", b"committed"]
    producer.commit_transaction()
    assert [r.value for r in broker.records("t")] == [b"committed"]
    reader = broker.consumer(SETTINGS, auto_offset_reset="earliest")
    reader.assign([T0])
    assert reader.end_offsets([T0]) == {T0: 2}


def test_an_open_transaction_holds_back_what_follows_it_from_a_read_committed_reader() -> None:
    broker = InMemoryBroker()
    producer = _txn_producer(broker)
    producer.begin_transaction()
    producer.send("t", b"open")
    broker.publish("t", _env(1))
    reader = broker.consumer(SETTINGS, auto_offset_reset="earliest")
    reader.assign([T0])
    assert reader.end_offsets([T0]) == {T0: 0}
    assert reader.poll() == {}
    producer.commit_transaction()
    assert len(reader.poll()[T0]) == 2


def test_offsets_sent_to_a_transaction_are_committed_with_it_and_only_then() -> None:
    broker = InMemoryBroker()
    broker.publish("t", _env(0))
    member = _member(broker)
    member.poll()
    producer = _txn_producer(broker)
    for outcome in ("abort", "commit"):
        producer.begin_transaction()
        producer.send_offsets_to_transaction({T0: OffsetAndMetadata(1, "", -1)}, member.group_metadata())
        getattr(producer, f"{outcome}_transaction")()
        assert broker.committed("g", T0) == (1 if outcome == "commit" else None)


def test_a_new_producer_with_the_same_transactional_id_fences_the_old_and_aborts_its_transaction() -> None:
    broker = InMemoryBroker()
    old = _txn_producer(broker)
    old.begin_transaction()
    old.send("t", b"zombie")
    _txn_producer(broker)
    with pytest.raises(ProducerFencedError):
        old.commit_transaction()
    assert broker.records("t") == []
    assert [r.value for r in broker.records("t", committed_only=False)] == [b"zombie"]


def test_after_a_rebalance_a_commit_for_the_old_generation_fails_and_the_next_poll_restarts_from_the_commit() -> None:
    broker = InMemoryBroker()
    for n in range(3):
        broker.publish("t", _env(n))
    member = _member(broker)
    assert len(member.poll()[T0]) == 3
    stale = member.group_metadata()
    broker.rebalance("g")
    with pytest.raises(CommitFailedError):
        member.commit({T0: OffsetAndMetadata(3, "", -1)})
    producer = _txn_producer(broker)
    producer.begin_transaction()
    with pytest.raises(CommitFailedError):
        producer.send_offsets_to_transaction({T0: OffsetAndMetadata(3, "", -1)}, stale)
    producer.abort_transaction()
    assert [r.offset for r in member.poll()[T0]] == [0, 1, 2]
    member.commit({T0: OffsetAndMetadata(3, "", -1)})
    assert broker.committed("g", T0) == 3


def test_a_second_member_takes_half_of_the_partitions_and_gets_them_back_when_it_leaves() -> None:
    broker = InMemoryBroker(partitions=4)
    broker.create_topic("t")
    first, second = _member(broker), _member(broker)
    first.poll()
    second.poll()
    assert len(first.assignment()) == len(second.assignment()) == 2
    assert first.assignment().isdisjoint(second.assignment())
    second.close()
    first.poll()
    assert len(first.assignment()) == 4


def test_an_armed_commit_failure_fails_one_commit() -> None:
    broker = InMemoryBroker()
    broker.publish("t", _env(0))
    member = _member(broker)
    member.poll()
    broker.fail_commits()
    with pytest.raises(CommitFailedError):
        member.commit({T0: OffsetAndMetadata(1, "", -1)})
    member.commit({T0: OffsetAndMetadata(1, "", -1)})
    assert broker.committed("g", T0) == 1


def test_an_armed_send_failure_fails_one_send_to_its_topic_and_the_producer_reports_it() -> None:
    broker = InMemoryBroker()
    broker.fail_sends(topic="t")
    producer = Producer(SETTINGS, clients=broker)
    producer.send("other", _env(0))
    producer.send("t", _env(1))
    with pytest.raises(ProduceFailed) as failed:
        producer.flush()
    assert isinstance(failed.value.__cause__, KafkaTimeoutError)
    producer.send("t", _env(2))
    producer.flush()
    assert [len(broker.records(t)) for t in ("other", "t")] == [1, 1]


def test_a_record_armed_to_come_twice_is_delivered_again_after_it_was_committed() -> None:
    broker = InMemoryBroker()
    for n in range(3):
        broker.publish("t", _env(n))
    broker.deliver_twice("t", 1)
    member = _member(broker)
    assert [r.offset for r in member.poll()[T0]] == [0, 1, 2]
    member.commit({T0: OffsetAndMetadata(3, "", -1)})
    assert [r.offset for r in member.poll()[T0]] == [1, 2]
    assert member.poll() == {}


def test_a_member_expelled_from_its_group_has_no_generation_until_it_polls_again() -> None:
    broker = InMemoryBroker()
    broker.create_topic("t")
    member = _member(broker)
    member.poll()
    assert member.group_metadata().generation_id >= 0
    broker.expel(member)
    assert (member.group_metadata().generation_id, member.group_metadata().member_id) == (-1, "")
    member.poll()
    assert member.assignment() == {T0}


def test_topics_are_created_through_the_admin_port_once() -> None:
    broker = InMemoryBroker()
    assert ensure_topics(SETTINGS, [TopicSpec("t", "", partitions=3)], clients=broker) == ["t"]
    assert ensure_topics(SETTINGS, [TopicSpec("t", "", partitions=3)], clients=broker) == []
    assert broker.partition_counts() == {"t": 3}
    with pytest.raises(TopicAlreadyExistsError):
        broker.admin(SETTINGS).create_topics([NewTopic("t", 1, 1)])


def test_held_transactions_block_init_until_released_or_time_out_as_kafka_python_does() -> None:
    broker = InMemoryBroker()
    broker.hold_transactions()
    with pytest.raises(KafkaTimeoutError):
        broker.producer(SETTINGS, transactional_id="tx", max_block_ms=50).init_transactions()
    assert broker.faults.inits_waiting == 0
    broker.hold_transactions(False)
    broker.producer(SETTINGS, transactional_id="tx", max_block_ms=50).init_transactions()


def test_an_armed_commit_failure_fails_a_transaction_which_can_then_only_be_aborted() -> None:
    broker = InMemoryBroker()
    producer = _txn_producer(broker)
    producer.begin_transaction()
    producer.send("t", b"never seen")
    broker.fail_commits()
    with pytest.raises(CommitFailedError):
        producer.commit_transaction()
    with pytest.raises(KafkaError):
        producer.commit_transaction()
    producer.abort_transaction()
    assert broker.records("t") == []
