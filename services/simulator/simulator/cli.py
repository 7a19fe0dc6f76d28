"""Running a scenario from the command line: `simulator run FILE` and `quartet simulate FILE`."""

from __future__ import annotations

import sys
from pathlib import Path

from quartet_shared.settings import SettingsError, load_settings

from simulator.bootstrap import bundled_scenarios, make_simulation
from simulator.preflight import PreflightError
from simulator.scenario_io import ScenarioError, load_scenario
from simulator.settings import SimulatorSettings

EXIT_PASSED, EXIT_AUDIT_FAILED, EXIT_UNUSABLE = 0, 1, 2


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
    if as_json:
        print(report.model_dump_json(indent=2))
    else:
        print(report.summary())
        print(f"  report: {simulation.out_dir / 'report.html'} (JSON: {simulation.out_dir / 'report.json'})")
    return EXIT_PASSED if report.passed else EXIT_AUDIT_FAILED
