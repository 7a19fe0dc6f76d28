"""Running a scenario from the command line: `simulator run FILE` and `quartet simulate FILE`."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

from kafka.errors import KafkaError
from pydantic import ValidationError
from quartet_shared.settings import SettingsError, load_settings

from simulator.bootstrap import bundled_scenarios, make_simulation
from simulator.preflight import PreflightError
from simulator.scenario_io import ScenarioError, load_scenario
from simulator.settings import SimulatorSettings

EXIT_PASSED, EXIT_AUDIT_FAILED, EXIT_UNUSABLE = 0, 1, 2
CAPACITY = "capacity"
CAPACITY_ENV = "SIMULATOR_CAPACITY"


def resolve(scenario: str | Path) -> Path:
    """A scenario path, or the name of a bundled scenario (`demo`, `chaos`, ...)."""
    path = Path(scenario)
    if path.exists() or path.suffix:
        return path
    return bundled_scenarios().get(str(scenario), path)


def simulate_file(scenario: str | Path, *, out: Path | None = None, as_json: bool = False) -> int:
    """Run a scenario file against the system the environment points at; print the summary; return the exit code.

    0: the audit passed; 1: it failed; 2: the scenario is invalid or part of the system is unreachable.
    """
    if str(scenario) == CAPACITY:
        return simulate_capacity(out=out, as_json=as_json)
    try:
        settings = load_settings(SimulatorSettings)
        parsed = load_scenario(resolve(scenario))
        simulation = make_simulation(settings, parsed, out_dir=out)
        simulation.prepare()
        print(f"simulating {parsed.name!r} (seed {parsed.seed}) for {parsed.duration_s:g} s ...", file=sys.stderr)
        report = simulation.run()
    except (SettingsError, ScenarioError, PreflightError) as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    where = f"{simulation.out_dir / 'report.html'} (JSON: {simulation.out_dir / 'report.json'})"
    print(report.model_dump_json(indent=2) if as_json else f"{report.summary()}\n  report: {where}")
    return EXIT_PASSED if report.passed else EXIT_AUDIT_FAILED


def simulate_capacity(*, out: Path | None = None, as_json: bool = False) -> int:
    """Search the running system's sustainable job rate; print it; 0 when a rate held, 1 when none did, 2 if unusable.

    The search's parameters come as JSON in SIMULATOR_CAPACITY (e.g. `{"interval_s": 5, "max_duration_s": 300}`).
    """
    from simulator.capacity import CapacityRun, search_capacity

    try:
        settings = load_settings(SimulatorSettings)
        run = CapacityRun.model_validate_json(os.environ.get(CAPACITY_ENV) or "{}")
    except (SettingsError, ValidationError) as exc:
        print(f"simulator: {CAPACITY_ENV}: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    out_dir = out or settings.runs_dir / f"capacity-{uuid.uuid4().hex[:12]}"
    print(f"searching the capacity for at most {run.max_duration_s:g} s ...", file=sys.stderr)
    try:
        report = search_capacity(settings, run, out_dir)
    except (KafkaError, TimeoutError) as exc:
        print(f"simulator: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    where = f"{out_dir / 'capacity.html'} (JSON: {out_dir / 'capacity.json'}, plot: {out_dir / 'capacity.png'})"
    print(report.model_dump_json(indent=2) if as_json else f"{report.summary()}\n  report: {where}")
    return EXIT_PASSED if report.verdict.held else EXIT_AUDIT_FAILED
