"""Wiring a simulation to its environment: rental database under Compose, rental driver only when needed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from simulator import servers
from simulator.bootstrap import bundled_scenarios, make_simulation
from simulator.console import default_chaos
from simulator.domain.report import WorkerStats
from simulator.scenario_io import load_scenario
from simulator.settings import SimulatorSettings
from simulator.workers import HostWorkers, worker_command


def test_under_compose_the_rental_checks_use_the_rental_database(tmp_path: Path) -> None:
    settings = SimulatorSettings(
        infra="compose", database_url="postgresql://quartet@localhost:5432/quartet", runs_dir=tmp_path
    )
    simulation = make_simulation(settings, load_scenario(bundled_scenarios()["demo"]))
    assert simulation.settings.rental_database_url == "postgresql://quartet@localhost:5432/rental"
    assert simulation.out_dir == tmp_path / simulation.run_id


def test_an_explicit_rental_database_wins_and_no_rental_means_no_driver(tmp_path: Path) -> None:
    settings = SimulatorSettings(
        infra="none", database_url="postgresql://a@h/x", rental_database_url="postgresql://a@h/r", runs_dir=tmp_path
    )
    demo = make_simulation(settings, load_scenario(bundled_scenarios()["demo"]))
    assert demo.rental is not None and demo.settings.rental_database_url == "postgresql://a@h/r"
    chaos = make_simulation(settings, load_scenario(bundled_scenarios()["chaos-short"]), out_dir=tmp_path / "x")
    assert chaos.rental is None and chaos.servers is None and chaos.out_dir == tmp_path / "x"


def test_managed_workers_connect_as_their_services_roles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each managed worker gets its own service's database URL, and never the simulator's PGPASSWORD."""
    monkeypatch.setenv("PGPASSWORD", "the-simulators-own")
    settings = SimulatorSettings(
        infra="none",
        rental_database_url="postgresql://simulator@h/rental",
        worker_database_url_training=SecretStr("postgresql://training:t-secret@h/training"),
        worker_database_url_planning=SecretStr("postgresql://planning:p-secret@h/planning"),
        runs_dir=tmp_path,
    )
    workers = load_scenario(bundled_scenarios()["chaos-short"]).workers
    commands = {kind: worker_command(settings, kind, getattr(workers, kind)) for kind in ("training", "planning")}
    assert commands["training"].env["DATABASE_URL"] == "postgresql://training:t-secret@h/training"
    assert commands["planning"].env["DATABASE_URL"] == "postgresql://planning:p-secret@h/planning"
    assert all("PGPASSWORD" not in c.env for c in commands.values())
    # Without a URL of their own they share the simulator's DATABASE_URL (and PGPASSWORD), as before.
    plain = SimulatorSettings(infra="none", database_url="postgresql://any@h/db", runs_dir=tmp_path)
    shared = [worker_command(plain, kind, getattr(workers, kind)) for kind in ("training", "planning")]
    assert {c.env["DATABASE_URL"] for c in shared} == {"postgresql://any@h/db"}
    assert {c.env["PGPASSWORD"] for c in shared} == {"the-simulators-own"}


@dataclass
class _FakeHost:
    """What the tooling's `native_workers` hook hands over (`quartet_tools.hostservers.KeptWorkers`)."""

    bootstrap: str
    killed: list[str] = field(default_factory=list)

    def kinds(self) -> list[str]:
        return ["training"]

    def kill(self, kind: str | None, pick: float) -> str:
        self.killed.append(str(kind))
        return "training worker training-worker.worker-1 (pid 1)"

    def counts(self) -> dict[str, dict[str, int]]:
        return {"training": {"managed": 1, "starts": 2, "restarts": 1, "killed": 1}}


def test_natively_the_console_and_a_run_act_on_make_ups_workers_through_the_tooling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make up`'s kept workers become the chaos panel's and a run's worker control; the hook is asked with the
    simulator's own broker, and under infra none nothing is asked."""
    asked: list[str] = []

    def hook(name: str) -> Any:
        if name != "native_workers":
            return None
        return lambda bootstrap: asked.append(bootstrap) or _FakeHost(bootstrap)

    monkeypatch.setattr(servers, "host_hook", hook)
    settings = SimulatorSettings(infra="native", kafka_bootstrap_servers="localhost:19092", runs_dir=tmp_path)
    chaos = default_chaos(settings)
    assert isinstance(chaos.workers, HostWorkers) and chaos.workers.kinds() == ["training"]
    assert chaos.workers.kill("training", 0.0) == "training worker training-worker.worker-1 (pid 1)"
    assert chaos.workers.stats() == {"training": WorkerStats(managed=1, starts=2, restarts=1, killed=1)}
    simulation = make_simulation(settings, load_scenario(bundled_scenarios()["chaos-short"]))
    assert isinstance(simulation.worker_control, HostWorkers)
    assert asked == ["localhost:19092", "localhost:19092"]
    none = make_simulation(settings.model_copy(update={"infra": "none"}), load_scenario(bundled_scenarios()["demo"]))
    assert none.worker_control is None and len(asked) == 2
