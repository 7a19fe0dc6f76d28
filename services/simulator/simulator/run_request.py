"""What a request to start a run names: a scenario object, YAML text, or a bundled scenario, and whether
running it needs the admin scope. The runs API and the console's chaos panel both start runs this way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, model_validator
from quartet_shared.http import Problem

from simulator.bootstrap import bundled_scenarios
from simulator.domain.scenario import Scenario
from simulator.scenario_io import ScenarioError, load_scenario, parse_scenario, scenario_from_data


class RunCreate(BaseModel):
    """A run request: exactly one of a scenario object, scenario YAML text, or a bundled scenario's name."""

    scenario: dict[str, Any] | None = None
    scenario_yaml: str | None = Field(default=None, max_length=2_000_000)
    builtin: str | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _one(self) -> RunCreate:
        given = [n for n in ("scenario", "scenario_yaml", "builtin") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of scenario, scenario_yaml or builtin (got {given or 'none'})")
        return self


def requested_scenario(body: RunCreate, scenario_dir: Path) -> Scenario:
    """The scenario a request names; Problem 422 naming each line and field when it cannot be used."""
    try:
        if body.scenario is not None:
            return scenario_from_data(body.scenario)
        if body.scenario_yaml is not None:
            return parse_scenario(body.scenario_yaml, "scenario_yaml", scenario_dir)
        path = bundled_scenarios().get(body.builtin or "")
        if path is None:
            raise Problem(
                422,
                "Invalid request",
                f"no bundled scenario {body.builtin!r}",
                errors=[{"field": "builtin", "message": f"one of {sorted(bundled_scenarios())}"}],
            )
        return load_scenario(path)
    except ScenarioError as exc:
        errors = [{**p.as_dict(), "field": p.field or "scenario"} for p in exc.problems]
        raise Problem(422, "Invalid scenario", str(exc), errors=errors) from exc


def admin_reason(scenario: Scenario) -> str | None:
    """Why running `scenario` needs the admin scope: it injects faults or starts worker processes; else None."""
    if scenario.faults:
        kinds = ", ".join(sorted({fault.kind for fault in scenario.faults}))
        return f"a scenario injecting faults ({kinds}) needs"
    if scenario.workers.training is not None or scenario.workers.planning is not None:
        return "a scenario starting worker processes needs"
    return None
