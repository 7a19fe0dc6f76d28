"""Rental journeys against a real `rental-manager all` process: tenants search, book viewings and apply,
landlords approve, deposits are paid, repairs requested and resolved; then the audit finds no overlapping
lease, every event on rental.events matching a committed outbox row for every change the journeys made, and each
viewing booked by a command on rental.commands (one published twice) applied exactly once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from quartet_shared.settings import KernelSettings
from quartet_tools.harness.rental import drop_database, rental_manager_process
from simulator.bootstrap import make_simulation
from simulator.scenario_io import parse_scenario
from simulator.settings import SimulatorSettings

from tests.support.rental import create_database
from tests.support.servers import Servers

pytestmark = pytest.mark.integration

JOURNEYS = """\
name: rental-journeys
seed: 11
duration_s: 12
rate: {shape: constant, per_second: 1.5}
arrivals: uniform
mix:
  - action: rental
    weight: 1
    think_time: {min_s: 0.0, max_s: 0.3}
    request_repair: 0.5
rental:
  landlords: 2
  houses_per_landlord: 2
  start_within_days: 90
faults:
  - {kind: garbage, count: 3, target: rental}
audit:
  settle_timeout_s: 120
"""


@dataclass(frozen=True)
class RentalManager:
    """A running rental manager: where it answers, its database, its topic prefix."""

    url: str
    database_url: str
    prefix: str


@pytest.fixture
def rental_manager(servers: Servers, settings: KernelSettings, unique: str, tmp_path: Path) -> Iterator[RentalManager]:
    """`rental-manager all` with a database and topics of its own."""
    name = f"simrental_{uuid.uuid4().hex[:10]}"
    database = create_database(servers.database_url, name)
    prefix = f"r{unique}."
    try:
        with rental_manager_process(
            settings.kafka_bootstrap_servers, settings.redis_url, database, tmp_path, prefix, RELAY_IDLE_S="0.1"
        ) as url:
            yield RentalManager(url, database, prefix)
    finally:
        drop_database(servers.database_url, name)


def test_rental_journeys_keep_leases_apart_and_events_in_step_with_the_database(
    rental_manager: RentalManager, servers: Servers, settings: KernelSettings, tmp_path: Path
) -> None:
    cfg = SimulatorSettings(
        **settings.model_dump(),
        runs_dir=tmp_path,
        infra="none",
        rental_url=rental_manager.url,
        rental_topic_prefix=rental_manager.prefix,
        rental_database_url=rental_manager.database_url,
    )
    simulation = make_simulation(cfg, parse_scenario(JOURNEYS), out_dir=tmp_path / "run", servers=servers)

    report = simulation.run()

    rental = report.rental
    assert rental is not None
    assert report.passed, report.summary() + f"\n{rental}"
    assert rental["journeys"] == report.planned.journeys == 18
    assert rental["errors"] == [] and rental["overlapping_leases"] == [] and rental["event_mismatches"] == []
    assert rental["completed"] + rental["conflicts"] == rental["journeys"]
    assert rental["completed"] >= 2 and rental["conflicts"] >= 1
    steps = rental["steps"]
    assert steps["approve"] == rental["completed"] and steps["pay_bill"] == rental["completed"]
    assert steps.get("repair", 0) >= 1
    # 9 viewings booked by command, one of them published twice: each applied exactly once (the inbox).
    assert steps["book_viewing_by_command"] + steps.get("book_viewing", 0) == 18
    assert rental["commands"] == steps["book_viewing_by_command"] + 1
    assert rental["leases"] == rental["completed"]
    # At least a registration, a viewing and an application per journey, every one matched to its outbox row.
    assert rental["events_seen"] >= 3 * rental["journeys"]
    # Garbage on rental.commands ends in rental.commands.dlq, like the jobs topics' garbage in theirs.
    assert report.audit.garbage.sent == report.audit.garbage.in_dlq == 3
    names = {c.name for c in report.audit.checks}
    assert {"no house has overlapping leases", "rental events match the database"} <= names
