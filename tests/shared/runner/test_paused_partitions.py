"""A partition paused and resumed on the real broker is fetched again: kafka-python 3.0.12 parks the records of a
partition paused while they were next in line and never puts them back once another partition's records were
drained meanwhile (see `kafka_compat.resume`), nor when the partition is revoked and assigned back. The retry
topic's pauses met it under load: a retry record waited for ever. The tests of the plain client pin its defect,
so that an upgrade fixing it says the workaround can go; the others go through it, on resume and on revoke."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from quartet_contracts.topics import TopicSpec
from quartet_shared.runner.failures import RetryPauses
from quartet_shared.runner.kafka_compat import resume
from quartet_shared.runner.model import H_NOT_BEFORE
from quartet_shared.settings import KernelSettings
from quartet_shared.topics import ensure_topics

pytestmark = pytest.mark.integration

# Records already on the paused partition: one returned before the pause, the rest still next in line then.
WAITING = 3
# Long enough for several fetches of a partition that is fetchable (a fetch waits at most fetch_max_wait_ms).
QUIET_S = 5.0

Pause = Callable[[KafkaConsumer, TopicPartition, ConsumerRecord], None]
Resume = Callable[[KafkaConsumer, list[TopicPartition]], None]


@pytest.fixture
def partitions(settings: KernelSettings, unique: str) -> tuple[TopicPartition, TopicPartition]:
    paused, other = f"paused.{unique}", f"other.{unique}"
    ensure_topics(settings, [TopicSpec(paused, "test"), TopicSpec(other, "test")])
    _produce(settings, paused, WAITING, not_before_s=3600)
    return TopicPartition(paused, 0), TopicPartition(other, 0)


@pytest.fixture
def consumer(settings: KernelSettings, partitions: tuple[TopicPartition, TopicPartition]) -> Iterator[KafkaConsumer]:
    # One record per poll, as the job workers read: the rest of a fetch stays next in line.
    client = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, max_poll_records=1, enable_auto_commit=False
    )
    client.assign(list(partitions))
    client.seek_to_beginning()
    try:
        yield client
    finally:
        client.close(autocommit=False)


def _produce(settings: KernelSettings, topic: str, count: int, not_before_s: float | None = None) -> None:
    """`count` records on partition 0 of `topic`; with `not_before_s`, due that long from now, as a retry's."""
    headers = [] if not_before_s is None else [(H_NOT_BEFORE, str(int((time.time() + not_before_s) * 1000)).encode())]
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        for n in range(count):
            producer.send(topic, f"{topic}:{n}".encode(), partition=0, headers=headers)
        producer.flush(30)
    finally:
        producer.close()


def _first_from(consumer: KafkaConsumer, tp: TopicPartition, timeout_s: float) -> ConsumerRecord | None:
    """The first record of `tp` a poll returns within `timeout_s`, or None."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        records = consumer.poll(timeout_ms=200).get(tp)
        if records:
            return records[0]
    return None


def _offset(record: ConsumerRecord | None) -> int | None:
    return None if record is None else int(record.offset)


def _plain_pause(consumer: KafkaConsumer, tp: TopicPartition, record: ConsumerRecord) -> None:
    """Rewind to `record` and pause, as the retry topic's pause does."""
    consumer.seek(tp, record.offset)
    consumer.pause(tp)


def _pause_with_records_in_line_then(
    settings: KernelSettings,
    consumer: KafkaConsumer,
    partitions: tuple[TopicPartition, TopicPartition],
    pause: Pause,
    then: Resume,
) -> None:
    """Pause `paused` at its first record by `pause` while its fetched records are next in line, let `other`'s
    records arrive and be drained during the pause, then resume (or revoke) `paused` by `then`."""
    paused, other = partitions
    first = _first_from(consumer, paused, 30)
    assert first is not None and first.offset == 0
    pause(consumer, paused, first)
    _produce(settings, other.topic, 1)
    assert _offset(_first_from(consumer, other, 30)) == 0
    then(consumer, [paused])


def _revoked_and_assigned_back(other: TopicPartition) -> Resume:
    """The group takes the partitions from this member (`other` stays) and hands them back; nothing was committed,
    so each comes back at its first record."""

    def revoke(consumer: KafkaConsumer, partitions: list[TopicPartition]) -> None:
        consumer.assign([other])
        consumer.assign([*partitions, other])
        for tp in partitions:
            consumer.seek(tp, 0)

    return revoke


def test_the_installed_client_never_fetches_a_plainly_resumed_partition_again(
    settings: KernelSettings, consumer: KafkaConsumer, partitions: tuple[TopicPartition, TopicPartition]
) -> None:
    _pause_with_records_in_line_then(
        settings, consumer, partitions, _plain_pause, lambda client, tps: client.resume(*tps)
    )
    assert _first_from(consumer, partitions[0], QUIET_S) is None


def test_a_partition_resumed_through_the_workaround_is_fetched_again_from_its_position(
    settings: KernelSettings, consumer: KafkaConsumer, partitions: tuple[TopicPartition, TopicPartition]
) -> None:
    _pause_with_records_in_line_then(settings, consumer, partitions, _plain_pause, resume)
    assert _offset(_first_from(consumer, partitions[0], 30)) == 0


def test_the_installed_client_never_fetches_a_partition_revoked_while_paused_and_assigned_back(
    settings: KernelSettings, consumer: KafkaConsumer, partitions: tuple[TopicPartition, TopicPartition]
) -> None:
    _pause_with_records_in_line_then(
        settings, consumer, partitions, _plain_pause, _revoked_and_assigned_back(partitions[1])
    )
    assert _first_from(consumer, partitions[0], QUIET_S) is None


def test_a_retry_pause_forgotten_on_revoke_leaves_the_partition_fetchable_when_it_comes_back(
    settings: KernelSettings, consumer: KafkaConsumer, partitions: tuple[TopicPartition, TopicPartition]
) -> None:
    """The runner's revoke path: RetryPauses paused the partition at a record not yet due, and forgets the pause
    with what the client parked for it when the group takes it away (as the runner's revoke listener does)."""
    pauses = RetryPauses()
    reassign = _revoked_and_assigned_back(partitions[1])

    def defer(client: KafkaConsumer, tp: TopicPartition, record: ConsumerRecord) -> None:
        assert pauses.defer_if_early(client, tp, record)

    def revoke(client: KafkaConsumer, tps: list[TopicPartition]) -> None:
        pauses.forget(tps, client)
        reassign(client, tps)

    _pause_with_records_in_line_then(settings, consumer, partitions, defer, revoke)
    assert _offset(_first_from(consumer, partitions[0], 30)) == 0
