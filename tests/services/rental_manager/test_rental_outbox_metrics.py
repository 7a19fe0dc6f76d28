"""The outbox backlog the relay publishes as gauges (what the outbox-backlog alert and panel read), on SQLite and
the in-memory broker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from quartet_shared.producer import Producer
from quartet_shared.testing.broker import InMemoryBroker
from rental_manager.adapters.orm import OutboxMessage
from rental_manager.adapters.relay import OutboxRelay
from rental_manager.bootstrap import Rental
from rental_manager.domain.model import Role
from rental_manager.service import houses
from sqlalchemy import update
from sqlalchemy.orm import Session

from tests.support.rental import house_data, offline_rental, person


@pytest.fixture
def rental(tmp_path: Path) -> Iterator[Rental]:
    """The rental manager on SQLite, no Redis, no Kafka."""
    with offline_rental(tmp_path) as wired:
        yield wired


def _gauges() -> tuple[float | None, float | None]:
    return (
        REGISTRY.get_sample_value("quartet_outbox_backlog"),
        REGISTRY.get_sample_value("quartet_outbox_oldest_unsent_seconds"),
    )


def test_the_backlog_counts_unsent_rows_and_the_oldest_ones_age_until_the_relay_publishes_them(rental: Rental) -> None:
    broker = InMemoryBroker()
    broker.create_topic(rental.service.topics.events)
    producer = Producer(rental.settings, clients=broker)
    relay = OutboxRelay(rental.engine, producer, source="/quartet/rental-manager")
    try:
        assert relay.measure_backlog() == (0, 0.0)
        assert _gauges() == (0.0, 0.0)
        landlord = person(rental, Role.LANDLORD)
        rental.service.run(houses.create_house, landlord.actor, house_data())
        with Session(rental.engine) as session, session.begin():
            waiting = session.query(OutboxMessage).filter(OutboxMessage.sent_at.is_(None)).count()
            # The oldest row has waited ten minutes: a relay that had been away.
            session.execute(update(OutboxMessage).values(created_at=datetime.now(UTC) - timedelta(minutes=10)))
        count, age = relay.measure_backlog()
        assert count == waiting >= 2
        assert 600 <= age < 660
        assert _gauges() == (float(count), age)
        while relay.relay_once():
            pass
        assert relay.measure_backlog() == (0, 0.0)
        assert _gauges() == (0.0, 0.0)
    finally:
        producer.close(1)
