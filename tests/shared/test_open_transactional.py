"""The one way every transactional producer is opened (the runner's and the simulator's probes): initialised,
fencing its predecessor, and closed again when the initialisation fails or a stop comes first."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from kafka.errors import KafkaTimeoutError, ProducerFencedError
from quartet_shared.producer import Producer, Stopped, open_transactional
from quartet_shared.testing.broker import InMemoryBroker

from tests.support.inmem import fast_settings


def _factory(broker: InMemoryBroker, made: list[Producer], max_block_ms: int = 5000) -> Callable[[], Producer]:
    def make() -> Producer:
        producer = Producer(fast_settings(), clients=broker, transactional_id="tx-1", max_block_ms=max_block_ms)
        made.append(producer)
        return producer

    return make


def test_a_new_producer_fences_the_one_before_it_with_the_same_id() -> None:
    broker = InMemoryBroker()
    made: list[Producer] = []
    first = open_transactional(_factory(broker, made))
    second = open_transactional(_factory(broker, made))
    second.raw.begin_transaction()
    with pytest.raises(ProducerFencedError):
        first.raw.begin_transaction()
    assert not second.raw.closed


def test_a_failed_initialisation_closes_the_producer_it_built() -> None:
    broker = InMemoryBroker()
    broker.hold_transactions()
    made: list[Producer] = []
    with pytest.raises(KafkaTimeoutError):
        open_transactional(_factory(broker, made, max_block_ms=100))
    assert [p.raw.closed for p in made] == [True]


def test_a_stop_while_the_coordinator_is_unreachable_gives_up_at_once_and_closes() -> None:
    broker = InMemoryBroker()
    broker.hold_transactions()
    made: list[Producer] = []
    stopping = threading.Event()
    threading.Timer(0.2, stopping.set).start()
    with pytest.raises(Stopped):
        open_transactional(_factory(broker, made, max_block_ms=60_000), stopping)
    assert [p.raw.closed for p in made] == [True]
    broker.hold_transactions(False)
