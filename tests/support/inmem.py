"""Driving the real consumer runner on the in-memory broker: items in, effects and outputs counted per id."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from kafka import TopicPartition
from quartet_contracts.envelope import Envelope
from quartet_shared.consumer import ConsumerRunner, Context, Mode, Subscription
from quartet_shared.runner.model import header
from quartet_shared.settings import KernelSettings
from quartet_shared.testing.broker import InMemoryBroker
from quartet_tools.harness.effects import Item

IN, OUT = "items", "items.out"
GROUP = "g"


def fast_settings(**update: Any) -> KernelSettings:
    """Kernel settings with backoffs short enough for a unit test (the in-memory broker answers at once)."""
    fast: dict[str, Any] = {"retry_backoff_base_s": 0.02, "retry_backoff_max_s": 0.1, "shutdown_grace_s": 5}
    return KernelSettings(**{"topic_partitions": 2, **fast, **update})


class Effects:
    """What a handler did: each delivery counted, and its effect applied once per id (as `claim_message` makes an
    at-least-once handler's effect idempotent). The handler emits its item to `OUT` unless told otherwise."""

    def __init__(self, emit: bool = True) -> None:
        self.deliveries: Counter[str] = Counter()
        self.applied: Counter[str] = Counter()
        # The threads (one per runner) that handled items.
        self.threads: set[int] = set()
        self.emit = emit
        self.on_item: Callable[[Item, Context], None] | None = None
        self._lock = threading.Lock()

    def handle(self, item: Item, ctx: Context) -> None:
        """The subscription's handler."""
        with self._lock:
            self.deliveries[ctx.envelope.id] += 1
            self.threads.add(threading.get_ident())
        if self.on_item is not None:
            self.on_item(item, ctx)
        if self.emit:
            ctx.emit(OUT, Envelope(type="quartet.test.Item.v1", source="/test", data={"n": item.n}, id=ctx.envelope.id))
        with self._lock:
            if ctx.envelope.id not in self.applied:
                self.applied[ctx.envelope.id] = 1


def publish_items(broker: InMemoryBroker, count: int, topic: str = IN, first: int = 0) -> list[str]:
    """Write `count` items (n = first, first + 1, ...) as an upstream service would; their ids."""
    ids = []
    for n in range(first, first + count):
        envelope = Envelope(type="quartet.test.Item.v1", source="/test", data={"n": n}, subject=f"item-{n}")
        broker.publish(topic, envelope)
        ids.append(envelope.id)
    return ids


def runner(
    broker: InMemoryBroker,
    effects: Effects,
    mode: Mode,
    settings: KernelSettings | None = None,
    **kwargs: Any,
) -> ConsumerRunner:
    """A runner of `effects.handle` on `IN` in group `GROUP`, on the broker."""
    sub = Subscription(IN, effects.handle, Item, **kwargs)
    return ConsumerRunner(
        settings or fast_settings(), GROUP, [sub], mode=mode, clients=broker, poll_timeout_ms=20, max_poll_records=50
    )


def run_until(broker: InMemoryBroker, runner_: ConsumerRunner, done: Callable[[], bool], timeout_s: float = 20) -> None:
    """Run the runner on its thread until `done` holds with nothing left to poll (failing the test if that never
    comes), then stop it."""
    runner_.start()
    try:
        reached = broker.wait_until(lambda: (broker.drained(GROUP) and done()) or runner_.error is not None, timeout_s)
    finally:
        runner_.stop(10)
    assert runner_.error is None, runner_.error
    assert reached and done(), "the runner did not get there in time"


def ids_on(broker: InMemoryBroker, topic: str, *, committed_only: bool = True) -> Counter[str]:
    """How many records with each `ce_id` a reader sees on a topic."""
    return Counter(header(r, "ce_id") or "" for r in broker.records(topic, committed_only=committed_only))


def committed_total(broker: InMemoryBroker, topics: Iterable[str] = (IN,)) -> int:
    """The group's committed offsets summed over the topics' partitions."""
    counts = broker.partition_counts()
    return sum(broker.committed(GROUP, TopicPartition(t, p)) or 0 for t in topics for p in range(counts.get(t, 0)))
