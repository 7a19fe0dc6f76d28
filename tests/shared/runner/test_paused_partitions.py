"""A partition paused and resumed on the real broker is fetched again: kafka-python 3.0.12 parks the records of a
partition paused while they were next in line and never puts them back once another partition's records were
drained meanwhile (see `kafka_compat.resume`). The retry topic's pauses met it under load: a retry record waited
for ever. The first test pins the client's defect, so that an upgrade fixing it says the workaround can go."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from quartet_contracts.topics import TopicSpec
from quartet_shared.runner.kafka_compat import resume
from quartet_shared.settings import KernelSettings
from quartet_shared.topics import ensure_topics

pytestmark = pytest.mark.integration

# Records already on the paused partition: one returned before the pause, the rest still next in line then.
WAITING = 3
# Long enough for several fetches of a partition that is fetchable (a fetch waits at most fetch_max_wait_ms).
QUIET_S = 5.0

Resume = Callable[[KafkaConsumer, list[TopicPartition]], None]


@pytest.fixture
def partitions(settings: KernelSettings, unique: str) -> tuple[TopicPartition, TopicPartition]:
    paused, other = f"paused.{unique}", f"other.{unique}"
    ensure_topics(settings, [TopicSpec(paused, "test"), TopicSpec(other, "test")])
    _produce(settings, paused, WAITING)
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


def _produce(settings: KernelSettings, topic: str, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        for n in range(count):
            producer.send(topic, f"{topic}:{n}".encode(), partition=0)
        producer.flush(30)
    finally:
        producer.close()


def _first_from(consumer: KafkaConsumer, tp: TopicPartition, timeout_s: float) -> int | None:
    """The offset of the first record of `tp` a poll returns within `timeout_s`, or None."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        records = consumer.poll(timeout_ms=200).get(tp)
        if records:
            return int(records[0].offset)
    return None


def _pause_with_records_in_line_then_resume(
    settings: KernelSettings, consumer: KafkaConsumer, partitions: tuple[TopicPartition, TopicPartition], how: Resume
) -> None:
    """Pause `paused` (rewound, as the retry topic's pause does) while its fetched records are next in line, let
    `other`'s records arrive and be drained during the pause, then resume `paused` by `how`."""
    paused, other = partitions
    assert _first_from(consumer, paused, 30) == 0
    consumer.seek(paused, 0)
    consumer.pause(paused)
    _produce(settings, other.topic, 1)
    assert _first_from(consumer, other, 30) == 0
    how(consumer, [paused])


def test_the_installed_client_never_fetches_a_plainly_resumed_partition_again(
    settings: KernelSettings, consumer: KafkaConsumer, partitions: tuple[TopicPartition, TopicPartition]
) -> None:
    _pause_with_records_in_line_then_resume(settings, consumer, partitions, lambda client, tps: client.resume(*tps))
    assert _first_from(consumer, partitions[0], QUIET_S) is None


def test_a_partition_resumed_through_the_workaround_is_fetched_again_from_its_position(
    settings: KernelSettings, consumer: KafkaConsumer, partitions: tuple[TopicPartition, TopicPartition]
) -> None:
    _pause_with_records_in_line_then_resume(settings, consumer, partitions, resume)
    assert _first_from(consumer, partitions[0], 30) == 0
