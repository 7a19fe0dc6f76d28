"""Wiring a simulation to its environment: rental database under Compose, rental driver only when needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from simulator.bootstrap import bundled_scenarios, make_simulation
from simulator.scenario_io import load_scenario
from simulator.settings import SimulatorSettings
from simulator.workers import worker_command


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
