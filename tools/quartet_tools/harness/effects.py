"""A small test service whose effect is durable and countable: one PostgreSQL row per processed message."""

from __future__ import annotations

import os
import uuid
from collections import Counter

from quartet_contracts.envelope import Envelope
from quartet_contracts.registry import Message, event_type
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
