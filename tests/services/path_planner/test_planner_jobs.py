"""run_job: the service entry point, scenario files, progress, cancellation, messages and the spec hash."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from path_planner.domain.errors import TerrainError
from path_planner.jobs import (
    completed_message,
    load_spec_file,
    planned_iterations,
    run_job,
)
from path_planner.terrain_io import TerrainFileLoader
from path_planner.worker import PlanJobRunner, PlanningKind
from pydantic import ValidationError
from quartet_contracts.schemas.planning import (
    FileTerrain,
    PlanCompleted,
    PlanningJobSpec,
    PlanProgressed,
    PlanRequested,
    normalized_spec_hash,
)
from quartet_shared.jobkind import failure_of
from quartet_shared.jobs import JobStatus
from quartet_shared.jobservice import JobRejected, Progress, job_router
from quartet_shared.safe_yaml import YamlTooComplex

from tests.support.fake_jobs import run_and_project
from tests.support.hostile_yaml import alias_bomb

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


@pytest.mark.slow
def test_run_job_with_comparison_and_progress() -> None:
    spec = small_spec(compare=["spso", "astar", "boa"])
    seen: list[tuple[str, int, float, float]] = []
    out = run_job(spec, on_iteration=lambda name, i, b, p: seen.append((name, i, b, p)))
    assert [r.optimizer for r in (out.primary, *out.comparison)] == ["iboa", "spso", "astar", "boa"]
    assert planned_iterations(spec) == 15 + 15 + 1 + 15
    assert [s[1] for s in seen] == list(range(1, 47))
    assert [s[0] for s in seen] == ["iboa"] * 15 + ["spso"] * 15 + ["astar"] + ["boa"] * 15
    assert seen[-1][3] == pytest.approx(1.0)
    assert all(a[3] <= b[3] for a, b in itertools.pairwise(seen))
    # each run reports its own best so far: the comparison curves are the runs' fitness curves
    assert [s[2] for s in seen[15:30]] == out.comparison[0].curve.tolist()
    assert out.primary.feasible, out.primary.problems
    assert sorted(out.plots) == ["fitness.png", "fitness_compare.png", "path_3d.png", "top_view.png"]
    assert not out.cancelled
    msg = completed_message("job-1", out)
    assert isinstance(msg, PlanCompleted)
    assert msg.spec_hash == normalized_spec_hash(spec)
    assert len(msg.fitness_curve) == 15 and len(msg.comparison) == 3
    assert [c.optimizer for c in msg.comparison] == ["spso", "astar", "boa"]
    assert [len(c.fitness_curve) for c in msg.comparison] == [15, 1, 15]
    assert msg.plots == ["fitness.png", "fitness_compare.png", "path_3d.png", "top_view.png"]
    assert PlanCompleted.model_validate_json(msg.model_dump_json()) == msg
    assert msg.min_clearance == out.primary.flight.min_clearance > 0
    assert [c.min_clearance for c in msg.comparison] == [r.flight.min_clearance for r in out.comparison]


def test_lshade_and_jso_in_a_job_and_its_comparison() -> None:
    spec = small_spec(optimizer={"name": "lshade", "population": 20, "iterations": 15}, compare=["jso", "iboa"])
    out = run_job(spec, render_plots=False)
    runs = (out.primary, *out.comparison)
    assert [r.optimizer for r in runs] == ["lshade", "jso", "iboa"]
    assert [(r.encoding, r.evaluations, r.curve.size) for r in runs] == [("spherical", 300, 15)] * 3
    assert out.primary.feasible, out.primary.problems
    assert [c.optimizer for c in completed_message("job-l", out).comparison] == ["jso", "iboa"]


def test_run_job_is_deterministic() -> None:
    a = run_job(small_spec(), render_plots=False)
    b = run_job(small_spec(), render_plots=False)
    assert a.primary.best_cost == b.primary.best_cost
    assert a.primary.waypoints.tolist() == b.primary.waypoints.tolist()


def test_cancel_stops_at_the_next_iteration() -> None:
    seen: list[int] = []
    out = run_job(
        small_spec(compare=["boa"]),
        on_iteration=lambda _name, i, _best, _progress: seen.append(i),
        should_stop=lambda: len(seen) >= 4,
    )
    assert out.cancelled
    assert seen == [1, 2, 3, 4]
    assert out.comparison == ()
    assert out.plots == {}
    assert out.primary.curve.size == 4


def test_service_limit_and_failures() -> None:
    kind = PlanningKind(500)
    with pytest.raises(JobRejected) as err:
        kind.check_spec(small_spec(compare=["boa"]))
    assert "600" in str(err.value)
    failed = kind.failed_event("j", err.value)
    assert failed.field == "optimizer.iterations" and not failed.retryable
    rejected = kind.problem(failed)
    assert (rejected["status"], rejected["errors"][0]["field"]) == (422, "optimizer.iterations")
    crashed = kind.failed_event("j", failure_of(RuntimeError("boom")))
    assert crashed.retryable and crashed.error == "RuntimeError: boom"
    assert kind.problem(crashed)["status"] == 500


def test_a_planning_job_runs_and_is_projected_and_a_refused_one_fails_with_a_422_problem() -> None:
    """The planning kind through the kernel's worker and projector, on fakes."""
    kind = PlanningKind(10_000)
    request = PlanRequested.model_validate(small_spec().model_dump())
    ports, outcome = run_and_project(kind, PlanJobRunner(render_plots=False), request, "plan-1")
    record = ports.store.require("plan-1")
    assert (outcome, record.status, record.progress) == ("quartet.planning.PlanCompleted.v1", JobStatus.SUCCEEDED, 1.0)
    result = ports.store.result("plan-1")
    assert result is not None and result["optimizer"] == "iboa" and result["evaluations"] == 20 * 15
    assert ports.producer.to(kind.topics.progress), "progress went out while planning"

    over = PlanRequested.model_validate(small_spec(compare=["boa", "spso"]).model_dump())
    ports, outcome = run_and_project(PlanningKind(500), PlanJobRunner(render_plots=False), over, "plan-2")
    failed = ports.store.require("plan-2")
    assert (outcome, failed.status) == ("quartet.planning.PlanFailed.v1", JobStatus.FAILED)
    assert failed.problem is not None
    assert (failed.problem["status"], failed.problem["title"]) == (422, "Plan rejected")
    assert failed.problem["errors"][0]["field"] == "optimizer.iterations"


def test_missing_terrain_file_is_a_clear_error(tmp_path: Path) -> None:
    spec = small_spec()
    data = spec.model_dump()
    data["scenario"]["terrain"] = {"kind": "file", "path": "missing.npz"}
    with pytest.raises(TerrainError, match=r"missing\.npz") as err:
        run_job(PlanningJobSpec.model_validate(data), terrain_loader=TerrainFileLoader(tmp_path))
    assert err.value.field == "scenario.terrain.path"


def test_a_spec_file_of_nested_aliases_is_refused_at_once(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb(7))
    started = time.monotonic()
    with pytest.raises(YamlTooComplex, match="expands to more than"):
        load_spec_file(bomb)
    assert time.monotonic() - started < 1.0  # a guard: seven levels would take minutes of CPU


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


def test_progress_events_name_the_optimizer() -> None:
    kind = PlanningKind(10_000)
    event = kind.progress_event("j", Progress(16, 31, 16 / 31, 1234.5, label="spso"))
    assert isinstance(event, PlanProgressed)
    assert (event.optimizer, event.iteration, event.iterations, event.best_cost) == ("spso", 16, 31, 1234.5)
    assert kind.progress_event("j", Progress(1, 1, 1.0, None)).optimizer is None
    assert kind.progress_event("j", Progress(1, 1, 1.0, float("inf"), label="nope")).optimizer is None


def test_runner_labels_progress_with_the_running_optimizer() -> None:
    seen: list[Progress] = []
    outcome = PlanJobRunner(render_plots=False)("j", small_spec(compare=["boa"]), seen.append, lambda: False)
    assert [p.label for p in seen] == ["iboa"] * 15 + ["boa"] * 15
    assert [p.iteration for p in seen] == list(range(1, 31)) and {p.total for p in seen} == {30}
    assert isinstance(outcome.completed, PlanCompleted) and outcome.last == seen[-1]


def test_admission_builds_the_scenario_and_names_what_is_wrong(tmp_path: Path) -> None:
    np.save(tmp_path / "flat.npy", np.zeros((100, 100)))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    kind = PlanningKind(10_000, terrain_loader=TerrainFileLoader(tmp_path))
    kind.check_spec(small_spec())

    def rejected(**scenario: Any) -> JobRejected:
        data = small_spec().model_dump()
        data["scenario"].update(scenario)
        with pytest.raises(JobRejected) as err:
            kind.check_spec(PlanningJobSpec.model_validate(data))
        return err.value

    bad = rejected(terrain={"kind": "file", "path": "bad.npz"})
    assert bad.field == "scenario.terrain.path" and "cannot read" in bad.message
    beyond = rejected(terrain={"kind": "file", "path": "flat.npy"})
    assert beyond.field == "scenario.bounds" and "exceeds the terrain" in beyond.message
    boxed = rejected(no_fly_zones=[{"x_min": 140, "x_max": 160, "y_min": 140, "y_max": 160}])
    assert boxed.field == "scenario.goal" and "no-fly zone 0" in boxed.message
    with pytest.raises(JobRejected, match="over this service's limit of 10,000"):
        kind.check_spec(small_spec(optimizer={"name": "iboa", "population": 100, "iterations": 101}))
    # without a loader only the budget is checked
    broken = small_spec().model_dump()
    broken["scenario"]["terrain"] = {"kind": "file", "path": "bad.npz"}
    PlanningKind(10_000).check_spec(PlanningJobSpec.model_validate(broken))


def test_the_terrain_loader_keeps_recent_terrains_until_the_file_changes(tmp_path: Path) -> None:
    np.save(tmp_path / "h.npy", np.zeros((10, 10)))
    load = TerrainFileLoader(tmp_path)
    first = load(FileTerrain(path="h.npy"))
    assert load(FileTerrain(path="h.npy")) is first
    assert load(FileTerrain(path="h.npy", height_scale=2)) is not first
    np.save(tmp_path / "h.npy", np.ones((10, 10)))
    os.utime(tmp_path / "h.npy", ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert load(FileTerrain(path="h.npy")).height.max() == 1.0


def test_gaussian_terrain_grid_is_bounded() -> None:
    data = small_spec().model_dump()
    data["scenario"]["terrain"]["cell_size"] = 0.05
    with pytest.raises(ValidationError) as err:
        PlanningJobSpec.model_validate(data)
    (error,) = err.value.errors()
    assert error["loc"] == ("scenario", "bounds") and "10,240,000 cells" in error["msg"]


def test_cache_key_follows_the_terrain_file_content_not_only_its_name(tmp_path: Path) -> None:
    data = small_spec().model_dump()
    data["scenario"]["terrain"] = {"kind": "file", "path": "map.npy"}
    spec = PlanningJobSpec.model_validate(data)
    np.save(tmp_path / "map.npy", np.zeros((200, 200)))
    kind = PlanningKind(10_000, terrain_loader=TerrainFileLoader(tmp_path))
    before = kind.spec_hash(spec)
    assert before != normalized_spec_hash(spec)
    assert run_job(spec, terrain_loader=TerrainFileLoader(tmp_path), render_plots=False).spec_hash == before
    assert kind.spec_hash(spec) == before
    np.save(tmp_path / "map.npy", np.full((200, 200), 3.0))  # the same name, another map
    os.utime(tmp_path / "map.npy", ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert kind.spec_hash(spec) != before
    # analytic terrain is all in the spec: its key is the spec's own hash
    assert kind.spec_hash(small_spec()) == normalized_spec_hash(small_spec())


def test_openapi_documents_the_jobs_status_and_result_models() -> None:
    app = FastAPI()
    app.include_router(job_router(PlanningKind(10_000)))
    paths = app.openapi()["paths"]
    for path, model in (("/jobs/{job_id}", "JobPublic"), ("/jobs/{job_id}/result", "PlanCompleted")):
        schema = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model}"}
