"""run_job: the service entry point, scenario files, progress, cancellation, messages and the spec hash."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from path_planner.domain.errors import BudgetError, TerrainError
from path_planner.jobs import (
    completed_message,
    failed_message,
    load_spec_file,
    planned_iterations,
    run_job,
)
from path_planner.terrain_io import TerrainFileLoader
from pydantic import ValidationError
from quartet_shared.schemas.planning import PlanCompleted, PlanningJobSpec, PlanRequested, normalized_spec_hash

SCENARIOS = Path(__file__).resolve().parents[3] / "services" / "path-planner" / "scenarios"


def small_spec(**overrides: Any) -> PlanningJobSpec:
    data: dict[str, Any] = {
        "scenario": {
            "terrain": {
                "kind": "gaussian",
                "base": 5,
                "peaks": [{"x": 80, "y": 80, "height": 90, "sigma_x": 25, "sigma_y": 25}],
            },
            "bounds": {"x": [1, 160], "y": [1, 160]},
            "altitude": {"min": 20, "max": 60},
            "waypoints": 4,
            "threats": [{"x": 60, "y": 100, "radius": 15}, {"x": 110, "y": 60, "radius": 15}],
            "start": [10, 10, 40],
            "goal": [150, 150, 40],
        },
        "optimizer": {"name": "iboa", "population": 20, "iterations": 15},
        "seed": 3,
    }
    data.update(overrides)
    return PlanningJobSpec.model_validate(data)


def test_run_job_with_comparison_and_progress() -> None:
    spec = small_spec(compare=["spso", "astar", "boa"])
    seen: list[tuple[int, float, float]] = []
    out = run_job(spec, on_iteration=lambda i, b, p: seen.append((i, b, p)))
    assert [r.optimizer for r in (out.primary, *out.comparison)] == ["iboa", "spso", "astar", "boa"]
    assert planned_iterations(spec) == 15 + 15 + 1 + 15
    assert [s[0] for s in seen] == list(range(1, 47))
    assert seen[-1][2] == pytest.approx(1.0)
    assert all(a[2] <= b[2] for a, b in itertools.pairwise(seen))
    assert out.primary.feasible, out.primary.problems
    assert sorted(out.plots) == ["fitness.png", "path_3d.png", "top_view.png"]
    assert not out.cancelled
    msg = completed_message("job-1", out)
    assert isinstance(msg, PlanCompleted)
    assert msg.spec_hash == normalized_spec_hash(spec)
    assert len(msg.fitness_curve) == 15 and len(msg.comparison) == 3
    assert msg.plots == ["fitness.png", "path_3d.png", "top_view.png"]
    assert PlanCompleted.model_validate_json(msg.model_dump_json()) == msg


def test_run_job_is_deterministic() -> None:
    a = run_job(small_spec(), render_plots=False)
    b = run_job(small_spec(), render_plots=False)
    assert a.primary.best_cost == b.primary.best_cost
    assert a.primary.waypoints.tolist() == b.primary.waypoints.tolist()


def test_cancel_stops_at_the_next_iteration() -> None:
    seen: list[int] = []
    out = run_job(
        small_spec(compare=["boa"]), on_iteration=lambda i, b, p: seen.append(i), should_stop=lambda: len(seen) >= 4
    )
    assert out.cancelled
    assert seen == [1, 2, 3, 4]
    assert out.comparison == ()
    assert out.plots == {}
    assert out.primary.curve.size == 4


def test_service_limit_and_failures() -> None:
    with pytest.raises(BudgetError) as err:
        run_job(small_spec(compare=["boa"]), max_evaluations=500)
    assert "600" in str(err.value)
    failed = failed_message("j", err.value)
    assert failed.field == "optimizer.iterations" and not failed.retryable
    with pytest.raises(ValidationError) as invalid:
        small_spec(seed=-1)
    assert failed_message("j", invalid.value).field == "seed"
    assert failed_message("j", RuntimeError("boom")).retryable


def test_missing_terrain_file_is_a_clear_error(tmp_path: Path) -> None:
    spec = small_spec()
    data = spec.model_dump()
    data["scenario"]["terrain"] = {"kind": "file", "path": "missing.npz"}
    with pytest.raises(TerrainError, match=r"missing\.npz") as err:
        run_job(PlanningJobSpec.model_validate(data), terrain_loader=TerrainFileLoader(tmp_path))
    assert err.value.field == "scenario.terrain.path"


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.name)
def test_scenario_files_validate_and_build(path: Path, benchmark_dir: Path) -> None:
    spec = load_spec_file(path)
    assert PlanRequested.model_validate(spec.model_dump()).scenario == spec.scenario
    quick = spec.model_copy(
        update={"optimizer": spec.optimizer.model_copy(update={"population": 10, "iterations": 3}), "compare": []}
    )
    out = run_job(quick, terrain_loader=TerrainFileLoader(benchmark_dir), render_plots=False)
    assert out.primary.evaluations == 30
    assert out.scenario.name == spec.scenario.name


def test_three_scenario_files_exist() -> None:
    names = {p.stem for p in SCENARIOS.glob("*.yaml")}
    assert {"spso-christmas", "gaussian-peaks", "urban-grid"} <= names
