"""The rental outbox relay on the 3-node cluster (RF 3, min ISR 2): the leader of the events topic is SIGKILLed
while houses are added and the relay publishes; a read_committed reader then finds every outbox row once, and
each house's events in the order they were committed."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator

import pytest
from quartet_contracts.envelope import Envelope
from quartet_shared.settings import KernelSettings
from quartet_tools.harness.cluster import ClusterServers
from rental_manager.adapters.orm import OutboxMessage
from rental_manager.bootstrap import Rental, bootstrap
from rental_manager.domain.model import Role
from rental_manager.service import houses
from sqlalchemy import select

from tests.support.cluster_records import Reader, assert_each_once
from tests.support.effects import wait_until
from tests.support.rental import house_data, person, rental_settings

pytestmark = [pytest.mark.integration, pytest.mark.fault]

HOUSES = 120


@pytest.fixture
def on_cluster(cluster: ClusterServers, settings: KernelSettings, own_database: str, unique: str) -> Iterator[Rental]:
    """The rental service on its own database, its topics and relay on the cluster."""
    kernel = cluster.settings()
    config = rental_settings(
        settings,
        own_database,
        unique,
        kafka_bootstrap_servers=kernel.kafka_bootstrap_servers,
        topic_replication_factor=kernel.topic_replication_factor,
        topic_partitions=kernel.topic_partitions,
    )
    wired = bootstrap(config)
    wired.ensure_topics()
    cluster.wait_isr_full([wired.service.topics.events])
    try:
        yield wired
    finally:
        wired.close()


def _outbox(rental: Rental) -> list[OutboxMessage]:
    with rental.engine.connect() as conn:
        stmt = select(OutboxMessage).order_by(OutboxMessage.created_at, OutboxMessage.id)
        return list(conn.execute(stmt).all())  # type: ignore[arg-type]


def _add_houses(rental: Rental, added: list[str]) -> None:
    landlord = person(rental, Role.LANDLORD)
    for _ in range(HOUSES):
        added.append(str(rental.service.run(houses.create_house, landlord.actor, house_data()).id))


def _assert_each_row_once_in_order(rows: list[OutboxMessage], events: list[Envelope]) -> None:
    assert_each_once((str(r.id) for r in rows), (e.id for e in events), "outbox rows")
    committed: dict[str | None, list[str]] = defaultdict(list)
    for row in rows:
        committed[row.key].append(str(row.id))
    seen: dict[str | None, list[str]] = defaultdict(list)
    for e in events:
        seen[e.key].append(e.id)
    disordered = [key for key in committed if seen[key] != committed[key]]
    assert not disordered, f"houses whose events are out of order: {disordered[:3]}"


def test_leader_sigkilled_while_the_relay_publishes_each_row_arrives_once_in_order(
    cluster: ClusterServers, on_cluster: Rental
) -> None:
    """Houses are added (two outbox rows each) while the relay runs; a third of the way in, the events topic's
    first leader is SIGKILLed. The relay carries on by itself and the outbox empties."""
    topic = on_cluster.service.topics.events
    victim = cluster.leader(topic, 0)
    relay = on_cluster.relay()
    relay.start()
    added: list[str] = []
    writer = threading.Thread(target=_add_houses, args=(on_cluster, added), daemon=True)
    writer.start()
    try:
        wait_until(lambda: relay.published >= HOUSES * 2 // 3, 120, "a third of the rows relayed before the kill")
        cluster.kill(victim)
        writer.join(180)
        assert len(added) == HOUSES, "the houses were not all added"
        wait_until(
            lambda: all(r.sent_at is not None for r in _outbox(on_cluster)), 180, "the relay to empty the outbox"
        )
    finally:
        relay.stop(10)
    # The outbox can empty before the controller fences the dead node (6 s) if no row left was for its partition:
    # the election is waited for, not assumed.
    wait_until(lambda: cluster.leader(topic, 0) not in (victim, -1), 60, f"a new leader of {topic}-0")
    rows = _outbox(on_cluster)
    assert len(rows) >= HOUSES * 2
    _assert_each_row_once_in_order(rows, Reader(cluster.settings(), topic).read_to_end())
