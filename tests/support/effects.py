"""Waiting for a condition, and reading what the services wrote to Kafka, for the tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from quartet_contracts.envelope import Envelope, decode
from quartet_shared.clients import wait_for_partitions
from quartet_shared.settings import KernelSettings


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.25) -> None:
    """Poll until `check()` holds, or fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def records_to_end(
    settings: KernelSettings, topics: Iterable[str], *, committed: bool = True, timeout_s: float = 60.0
) -> list[ConsumerRecord]:
    """Every record on `topics` up to their end offsets as they are now: with `committed` (a read_committed reader,
    as the contract's readers are) up to each partition's last stable offset, else every record written.

    Reading to the end offsets, not until an idle gap, keeps a slow broker on a busy host from cutting the read
    short, and ends a poll or a read once the writers have stopped as soon as the topic is read.
    """
    names = list(topics)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        isolation_level="read_committed" if committed else "read_uncommitted",
    )
    try:
        deadline = time.monotonic() + timeout_s
        partitions = wait_for_partitions(consumer, names, timeout_s)
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"timed out reading {names} to their end offsets {end}"
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def committed_to_end(settings: KernelSettings, group: str, topics: Iterable[str]) -> bool:
    """Whether `group` has committed every partition of `topics` up to its end offset now: nothing there is left to
    be delivered to it (again), so once this holds no redelivery can still double an effect."""
    probe = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=group, enable_auto_commit=False)
    try:
        partitions = wait_for_partitions(probe, topics)
        end = probe.end_offsets(partitions)
        return all((probe.committed(tp) or 0) >= end[tp] for tp in partitions)
    finally:
        probe.close()


def read_all(settings: KernelSettings, topics: Iterable[str], idle_ms: int = 5000) -> list[Envelope]:
    """Every committed record on `topics`, decoded (a read_committed reader, as the contract's readers are), read
    until none has come for `idle_ms`: room for a late record (a double, say) while its writer still runs."""
    consumer = KafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        consumer_timeout_ms=idle_ms,
    )
    try:
        return [decode(r.key, r.value, r.headers) for r in consumer]
    finally:
        consumer.close()
