"""A rental request's trace on SQLite and the in-memory broker: the HTTP request's span, carried by the outbox row
to the relay's send span and from there, in the record's traceparent, to the `rental.events` consumer's span."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from quartet_shared.producer import Producer
from quartet_shared.testing.broker import InMemoryBroker
from rental_manager.adapters.orm import OutboxMessage
from rental_manager.adapters.relay import OutboxRelay
from rental_manager.bootstrap import Rental
from rental_manager.domain.model import Role
from rental_manager.entrypoints.api import create_api
from rental_manager.entrypoints.worker import CACHE_GROUP, cache_runner
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.support.rental import house_data, offline_rental, person
from tests.support.tracing import assert_child, the_span


@pytest.fixture
def rental(tmp_path: Path) -> Iterator[Rental]:
    """The wired rental manager on a SQLite file, with no Redis (its cache degrades) and no Kafka of its own."""
    with offline_rental(tmp_path) as wired:
        yield wired


def test_a_rental_requests_trace_runs_through_the_outbox_and_relay_to_the_events_consumer(
    spans: InMemorySpanExporter, rental: Rental
) -> None:
    broker = InMemoryBroker()
    events = rental.service.topics.events
    broker.create_topic(events)
    landlord = person(rental, Role.LANDLORD)
    with TestClient(create_api(rental)) as client:
        answer = client.post("/houses", json=house_data().model_dump(mode="json"), headers=landlord.headers)
    assert answer.status_code == 201, answer.text
    request = the_span(spans, "POST /houses", SpanKind.SERVER)
    with Session(rental.engine) as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.traceparent.is_not(None))).all()
    # Every event the request wrote (the house, its listing) carries the request's trace to the relay.
    assert rows and {r.traceparent.split("-")[1] for r in rows if r.traceparent} == {f"{request.context.trace_id:032x}"}

    producer = Producer(rental.settings, clients=broker)
    relay = OutboxRelay(rental.engine, producer, source="/quartet/rental-manager")
    assert relay.relay_once() >= 1
    producer.close(1)
    consumer = cache_runner(rental.cache, rental.service, rental.settings, clients=broker)
    consumer.start()
    try:
        drained = broker.wait_until(lambda: broker.drained(CACHE_GROUP), 20)
    finally:
        consumer.stop(10)
    assert drained and consumer.error is None

    for row in rows:
        assert row.traceparent is not None
        sent = the_span(spans, f"send {events}", SpanKind.PRODUCER, messaging__message__id=str(row.id))
        processed = the_span(spans, f"process {events}", SpanKind.CONSUMER, messaging__message__id=str(row.id))
        # The relay's span continues the row's context: the request, or a span inside it, is its parent.
        assert sent.parent is not None and f"{sent.parent.span_id:016x}" == row.traceparent.split("-")[2]
        assert_child(processed, sent)
        assert {s.context.trace_id for s in (sent, processed) if s.context} == {request.context.trace_id}
        assert (processed.attributes or {})["messaging.consumer.group.name"] == CACHE_GROUP
