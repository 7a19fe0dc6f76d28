"""Rental journeys against a real `rental-manager all` process: tenants search, book viewings and apply,
landlords approve, deposits are paid, repairs requested and resolved; then the audit finds no overlapping
lease and every event on rental.events matching a committed outbox row, for every change the journeys made."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from quartet_shared.settings import KernelSettings
from simulator.bootstrap import make_simulation
from simulator.scenario_io import parse_scenario
from simulator.settings import SimulatorSettings

from tests.support.effects import wait_until
from tests.support.rental import JWT_SECRET, create_database, drop_database
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
audit:
  settle_timeout_s: 120
"""


@dataclass(frozen=True)
class RentalManager:
    """A running rental manager: where it answers, its database, its topic prefix."""

    url: str
    database_url: str
    prefix: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def rental_manager(servers: Servers, settings: KernelSettings, unique: str, tmp_path: Path) -> Iterator[RentalManager]:
    """`rental-manager all` on a free port, a database and topics of its own."""
    name = f"simrental_{uuid.uuid4().hex[:10]}"
    database = create_database(servers.database_url, name)
    port, prefix = free_port(), f"r{unique}."
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RENTAL_", "QUARTET_", "SIMULATOR_"))},
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "REDIS_URL": settings.redis_url,
        "DATABASE_URL": database,
        "RENTAL_TOPIC_PREFIX": prefix,
        "RENTAL_PORT": str(port),
        "RENTAL_TOPIC_PARTITIONS": "3",
        "RENTAL_JWT_SECRET": JWT_SECRET,
        "RENTAL_ARGON2_TIME_COST": "1",
        "RENTAL_ARGON2_MEMORY_KIB": "1024",
        "RENTAL_RELAY_IDLE_S": "0.1",
    }
    log = (tmp_path / "rental.log").open("wb")
    script = Path(sys.executable).parent / "rental-manager"
    proc = subprocess.Popen([str(script), "all"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            assert proc.poll() is None, (tmp_path / "rental.log").read_text()[-3000:]
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 120, "rental-manager to answer /healthz")
        yield RentalManager(base, database, prefix)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
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
    assert rental["leases"] == rental["completed"]
    # Users, houses, viewings, applications, leases, bills, payments and repairs: many events, all accounted for.
    assert rental["events_seen"] > 4 * rental["journeys"]
    names = {c.name for c in report.audit.checks}
    assert {"no house has overlapping leases", "rental events match the database"} <= names
