"""A small test service whose effect is durable and countable: one PostgreSQL row per processed message."""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from quartet_contracts.envelope import Envelope, decode
from quartet_contracts.registry import Message, event_type
from quartet_shared.clients import wait_for_partitions
from quartet_shared.consumer import Context
from quartet_shared.db import claim_message, create_kernel_tables, make_engine
from quartet_shared.producer import Producer
from quartet_shared.settings import KernelSettings
from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.orm import Session

metadata = MetaData()
effects = Table(
    "test_effects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run", String(64), nullable=False, index=True),
    Column("message_id", String(200), nullable=False),
    Column("n", Integer, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("at", DateTime(timezone=True), server_default=func.now()),
)


@event_type("quartet.test.Item.v1", topic="test.items")
class Item(Message):
    """A test work item."""

    n: int
    broken: bool = False


def setup_db(url: str) -> Engine:
    """An engine with the effect and kernel tables in place."""
    engine = make_engine(url)
    metadata.create_all(engine, checkfirst=True)
    create_kernel_tables(engine)
    return engine


def record_effect(engine: Engine, run: str, consumer: str, ctx: Context, n: int) -> bool:
    """Write the effect and claim the message id in one transaction; False if it was a duplicate."""
    with Session(engine) as session, session.begin():
        if not claim_message(session, consumer, ctx.envelope.id):
            return False
        session.execute(insert(effects).values(run=run, message_id=ctx.envelope.id, n=n, pid=os.getpid()))
    return True


def effect_counts(engine: Engine, run: str) -> Counter[str]:
    """How many effect rows each message id has."""
    with engine.connect() as conn:
        rows = conn.execute(select(effects.c.message_id).where(effects.c.run == run)).all()
    return Counter(r[0] for r in rows)


def effect_pids(engine: Engine, run: str) -> Counter[int]:
    """How many effects each worker process wrote."""
    with engine.connect() as conn:
        rows = conn.execute(select(effects.c.pid).where(effects.c.run == run)).all()
    return Counter(r[0] for r in rows)


def publish_items(settings: KernelSettings, topic: str, count: int, *, start: int = 0, keys: int = 50) -> list[str]:
    """Publish `count` items (keys spread over partitions) and return their event ids."""
    producer = Producer(settings)
    ids = []
    for i in range(start, start + count):
        env = Envelope.of(Item(n=i), source="/tests", id=str(uuid.uuid4()), key=f"k{i % keys}")
        producer.send(topic, env)
        ids.append(env.id)
    producer.flush(timeout_s=60)
    producer.close()
    return ids


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
