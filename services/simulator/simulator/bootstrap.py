"""One place that wires a simulation to the real world; nothing here connects at import time."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy.engine import make_url

from simulator.cluster import ClusterControl
from simulator.domain.scenario import Scenario
from simulator.run import RentalDriver, Simulation
from simulator.scenario_io import BUNDLED_DIR
from simulator.servers import Controls, ServerControl, detect_controls
from simulator.settings import SimulatorSettings
from simulator.workers import WorkerControl

SCENARIOS = BUNDLED_DIR
COMPOSE_RENTAL_DATABASE = "rental"


def bundled_scenarios() -> dict[str, Path]:
    """The scenario files shipped with the simulator, by name."""
    return {p.stem: p for p in sorted(SCENARIOS.glob("*.yaml"))}


def _rental_driver(settings: SimulatorSettings) -> RentalDriver:
    from simulator.rental import RentalHttpDriver

    return RentalHttpDriver(settings)


def make_simulation(
    settings: SimulatorSettings,
    scenario: Scenario,
    *,
    out_dir: Path | None = None,
    servers: ServerControl | None = None,
    workers: WorkerControl | None = None,
    rental: RentalDriver | None = None,
    cluster: ClusterControl | None = None,
    run_id: str | None = None,
) -> Simulation:
    """A Simulation with the servers, workers and rental manager of the environment `settings` describe.

    Tests pass their own `servers` (the private stack's control); otherwise the stack `make up` started is
    found natively or under Compose, where the worker containers are reached through the Docker API. The cluster
    faults need `cluster`: the tests pass a native cluster behind fault proxies (the tooling's `ProxiedCluster`);
    under Compose the `cluster` profile's containers are controlled through the Docker API.
    """
    run = run_id or uuid.uuid4().hex[:12]
    controls = detect_controls(
        settings,
        cluster=bool(scenario.cluster_faults()),
        cut_kinds=tuple(sorted(scenario.partitioned_workers())),
        given=Controls(servers=servers, workers=workers, cluster=cluster),
    )
    if controls.compose and settings.rental_database_url is None and settings.database_url:
        # Under Compose every service has its own database on the one server; the rental manager's is "rental".
        rental_db = make_url(settings.database_url).set(database=COMPOSE_RENTAL_DATABASE)
        settings = settings.model_copy(update={"rental_database_url": rental_db.render_as_string(hide_password=False)})
    if rental is None and scenario.has_rental():
        rental = _rental_driver(settings)
    return Simulation(
        settings=settings,
        scenario=scenario,
        out_dir=out_dir or settings.runs_dir / run,
        servers=controls.servers,
        worker_control=controls.workers,
        rental=rental,
        cluster=controls.cluster,
        run_id=run,
    )
