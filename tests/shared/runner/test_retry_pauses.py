"""Retry partitions paused until their head record is due: resumed when due, forgotten when revoked. What the
client parked for them, and whether they are fetched again after a resume or a revoke, is on the real broker in
test_paused_partitions."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from quartet_shared.runner.failures import RetryPauses
from quartet_shared.runner.model import H_NOT_BEFORE

EARLY, OTHER = TopicPartition("jobs.retry", 0), TopicPartition("jobs.retry", 1)


@pytest.fixture
def consumer() -> Iterator[KafkaConsumer]:
    # Nothing listens on port 1: assigning, seeking and pausing contact no broker.
    client = KafkaConsumer(bootstrap_servers="127.0.0.1:1", api_version=(2, 8), enable_auto_commit=False)
    client.assign([EARLY, OTHER])
    # With every position known, position() asks the (absent) broker nothing.
    for tp in (EARLY, OTHER):
        client.seek(tp, 0)
    try:
        yield client
    finally:
        client.close(autocommit=False)


def _record(tp: TopicPartition, offset: int, due_in_s: float) -> ConsumerRecord:
    due_ms = int((time.time() + due_in_s) * 1000)
    return ConsumerRecord(
        tp.topic, tp.partition, -1, offset, 0, 0, None, b"{}", [(H_NOT_BEFORE, str(due_ms).encode())], None, 0, 2, -1
    )


def test_an_early_record_pauses_its_partition_at_itself_until_it_is_due(consumer: KafkaConsumer) -> None:
    pauses = RetryPauses()
    assert not pauses.defer_if_early(consumer, OTHER, _record(OTHER, 3, -1.0))
    deferred = time.monotonic()
    assert pauses.defer_if_early(consumer, EARLY, _record(EARLY, 7, 2.0))
    pauses.resume_due(consumer)
    assert consumer.paused() == {EARLY}
    assert consumer.position(EARLY) == 7
    time.sleep(max(0.0, deferred + 2.1 - time.monotonic()))
    pauses.resume_due(consumer)
    assert consumer.paused() == set()


def test_a_forgotten_pause_is_never_resumed_by_this_member(consumer: KafkaConsumer) -> None:
    """Revoked, a partition's pause is no longer this member's: its end resumes nothing (the next owner, or this
    member's next assignment, starts it unpaused)."""
    pauses = RetryPauses()
    assert pauses.defer_if_early(consumer, EARLY, _record(EARLY, 7, 0.05))
    assert pauses.defer_if_early(consumer, OTHER, _record(OTHER, 1, 0.05))
    pauses.forget([EARLY], consumer)
    time.sleep(0.1)
    pauses.resume_due(consumer)
    assert consumer.paused() == {EARLY}
