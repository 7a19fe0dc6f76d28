"""The runner's lifecycle: a prompt stop while the producer initialises, honest readiness (on the in-memory broker,
and readiness once more against real servers through the HTTP check)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kafka.errors import KafkaTimeoutError
from prometheus_client import REGISTRY
from quartet_contracts.topics import TopicSpec
from quartet_shared.cache import ResilientRedis
from quartet_shared.consumer import ConsumerRunner, Context, Mode, Subscription
from quartet_shared.db import make_engine
from quartet_shared.metrics import CONSUMER_LAG
from quartet_shared.net import free_port
from quartet_shared.ops import dependency_checks, ops_server
from quartet_shared.producer import Producer
from quartet_shared.settings import KernelSettings
from quartet_shared.testing.broker import InMemoryBroker
from quartet_shared.topics import ensure_topics
from quartet_tools.harness.effects import Item

from tests.support.inmem import GROUP, OUT, Effects, publish_items
from tests.support.inmem import runner as in_memory_runner


class _Gates:
    """Holds init_transactions until `gate` is set, as a broker that is away does (kafka-python then gives up
    after max_block_ms with KafkaTimeoutError); `entered` is set, at `entered_at`, when it is called."""

    def __init__(self, block_s: float = 30.0) -> None:
        self.gate, self.entered, self.block_s = threading.Event(), threading.Event(), block_s
        self.entered_at = 0.0

    def hold(self) -> None:
        self.entered_at = time.monotonic()
        self.entered.set()
        if not self.gate.wait(self.block_s):
            raise KafkaTimeoutError("Timeout expired while initializing transactional state")


class _GatedRaw:
    """A real KafkaProducer whose init_transactions is first held by the gates."""

    def __init__(self, raw: Any, gates: _Gates) -> None:
        self._raw, self._gates = raw, gates

    def init_transactions(self) -> None:
        self._gates.hold()
        self._raw.init_transactions()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class _GatedProducer(Producer):
    def __init__(self, settings: KernelSettings, gates: _Gates, **overrides: Any) -> None:
        super().__init__(settings, **overrides)
        self._gates = gates

    @property
    def raw(self) -> Any:
        """The real producer, its init held by the gates."""
        return _GatedRaw(super().raw, self._gates)


def _gated_factory(gates: _Gates) -> Any:
    def make(settings: KernelSettings, **overrides: Any) -> Producer:
        return _GatedProducer(settings, gates, **overrides)

    return make


def _runner(settings: KernelSettings, unique: str, gates: _Gates) -> ConsumerRunner:
    topic = f"items.{unique}"
    ensure_topics(settings, [TopicSpec(topic, "")])

    def handle(item: Item, ctx: Context) -> None:
        """Nothing to do: these tests are about the lifecycle."""

    return ConsumerRunner(
        settings,
        f"g.{unique}",
        [Subscription(topic, handle, Item)],
        mode=Mode.TRANSACTIONAL,
        producer_factory=_gated_factory(gates),
    )


@pytest.fixture
def restore_signals() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@pytest.mark.usefixtures("restore_signals")
def test_sigterm_while_transactions_initialise_stops_the_runner_at_once() -> None:
    broker = InMemoryBroker()
    broker.hold_transactions()
    runner = in_memory_runner(broker, Effects(), Mode.TRANSACTIONAL)
    runner.install_signal_handlers()
    entered_at: list[float] = []

    def terminate() -> None:
        assert broker.wait_until(lambda: broker.faults.inits_waiting > 0, 60), "init_transactions was never called"
        entered_at.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate, daemon=True)
    killer.start()
    runner.run()  # in the main thread, like a worker process; raising here would exit 1
    stopped_in = time.monotonic() - entered_at[0]
    killer.join(5)
    assert stopped_in < 5, f"the runner took {stopped_in:.1f} s to honour SIGTERM"
    assert not runner.ready()


def test_a_runner_is_ready_only_once_its_producer_is_initialised_and_it_has_joined() -> None:
    broker = InMemoryBroker()
    broker.hold_transactions()
    publish_items(broker, 3)
    runner = in_memory_runner(broker, Effects(), Mode.TRANSACTIONAL)
    runner.start()
    try:
        assert broker.wait_until(lambda: broker.faults.inits_waiting > 0, 10)
        assert not runner.ready()
        broker.hold_transactions(False)
        assert broker.wait_until(runner.ready, 10)
        assert broker.wait_until(lambda: broker.drained(GROUP), 10)
        assert len(broker.records(OUT)) == 3
    finally:
        runner.stop(10)
    assert runner.error is None
    assert not runner.ready()


def test_a_runner_counts_the_rebalances_that_took_partitions_from_it() -> None:
    broker = InMemoryBroker()
    effects = Effects(emit=False)
    first = in_memory_runner(broker, effects, Mode.AT_LEAST_ONCE)
    second = in_memory_runner(broker, effects, Mode.AT_LEAST_ONCE)
    first.start()
    try:
        assert broker.wait_until(first.ready, 10)
        # Its own first join took nothing from it.
        assert first.revokes == 0
        second.start()
        assert broker.wait_until(second.ready, 10)
        assert broker.wait_until(lambda: first.revokes == 1, 10)
        assert second.revokes == 0
    finally:
        second.stop(10)
        first.stop(10)
    assert first.error is None and second.error is None


@pytest.mark.integration
def test_a_worker_is_ready_only_once_its_producer_is_initialised_and_it_has_joined(
    settings: KernelSettings, unique: str
) -> None:
    gates = _Gates(block_s=120)
    runner = _runner(settings, unique, gates)
    redis, engine = ResilientRedis(settings), make_engine(settings.database_url or "")
    port = free_port()
    checks = dependency_checks(settings, redis, engine, [runner])
    with ops_server("test worker", "127.0.0.1", port, checks):
        runner.start()
        try:
            assert gates.entered.wait(60), "init_transactions was never called"
            unready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
            assert unready.status_code == 503
            assert unready.json()["checks"][f"consumer g.{unique}"] == "unreachable"
            assert unready.json()["checks"]["kafka"] == "ok"
            gates.gate.set()
            deadline = time.monotonic() + 60
            while not runner.ready() and time.monotonic() < deadline:
                time.sleep(0.1)
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
            assert ready.status_code == 200, ready.text
        finally:
            runner.stop(10)
            redis.close()
            engine.dispose()
    assert runner.error is None
    assert not runner.ready()


def _lag_partitions() -> set[str]:
    family = next(iter(CONSUMER_LAG.collect()))
    return {s.labels["partition"] for s in family.samples if s.labels["group"] == GROUP}


def test_the_up_gauge_is_one_while_the_runner_serves_its_group_and_a_stopped_one_shows_no_lag() -> None:
    """What the "no live worker" alert reads: a member that has joined says 1, a stopped one 0; and a stopped
    member's lag series go, so that summing lag over a group's members never counts a partition twice."""
    broker = InMemoryBroker()
    publish_items(broker, 2)
    runner = in_memory_runner(broker, Effects(), Mode.AT_LEAST_ONCE)
    up = {"group": GROUP}
    runner.start()
    try:
        assert broker.wait_until(lambda: REGISTRY.get_sample_value("quartet_consumer_up", up) == 1.0, 10)
        assert broker.wait_until(lambda: _lag_partitions() == {"0", "1"}, 10)
    finally:
        runner.stop(10)
    assert REGISTRY.get_sample_value("quartet_consumer_up", up) == 0.0
    assert _lag_partitions() == set()
