"""Wiring a simulation to its environment: rental database under Compose, rental driver only when needed."""

from __future__ import annotations

from pathlib import Path

from simulator.bootstrap import bundled_scenarios, make_simulation
from simulator.scenario_io import load_scenario
from simulator.settings import SimulatorSettings


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
