"""The service's entry point for one planning job: spec in, PlanOutcome out (plus message builders).

    outcome = run_job(spec, terrain_loader=TerrainFileLoader(), on_iteration=cb, should_stop=stop)

`run_job` builds the scenario (loading file terrain through `terrain_loader`), runs the requested
optimizer and then each optimizer of `spec.compare` with the same budget and seed, and renders the
figures. `on_iteration(optimizer, iteration, best_cost, progress)` is called after every iteration of
the optimizer then running, counting iterations over all runs (`planned_iterations(spec)` in total) with
progress in 0..1 and that run's best cost so far; `should_stop()`
is polled after every iteration and cancels the job there (the outcome then has `cancelled = True`
and the best path found so far). Bad input raises `PlanningError` (its `field` names the culprit); an
infeasible scenario is not an error: the best-effort path comes back with `feasible = False`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from quartet_contracts.schemas.planning import (
    ComparedRun,
    CostTerms,
    FileTerrain,
    GaussianTerrain,
    PlanCompleted,
    PlanningJobSpec,
    PngTerrain,
    ScenarioSpec,
    normalized_spec_hash,
)
from quartet_shared.safe_yaml import safe_load

from path_planner.domain.cost import CostWeights
from path_planner.domain.optimizers import Budget
from path_planner.domain.optimizers.base import ShouldStop
from path_planner.domain.planner import PlannerConfig, PlanResult, plan
from path_planner.domain.scenario import (
    Bounds,
    GaussianPeak,
    NoFlyZone,
    Scenario,
    Terrain,
    Threat,
    gaussian_terrain,
)
from path_planner.domain.types import FloatArray
from path_planner.terrain_io import TerrainFileLoader

TerrainLoader = Callable[[FileTerrain | PngTerrain], Terrain]
OnJobIteration = Callable[[str, int, float, float], None]
"""`(optimizer, iteration over all runs, best cost of the current run, progress 0..1)`."""
MAX_PATH_POINTS = 400


@dataclass(frozen=True)
class PlanOutcome:
    """A job's results: the requested run, the comparison runs, figures (name -> PNG) and the spec hash."""

    spec_hash: str
    scenario: Scenario
    primary: PlanResult
    comparison: tuple[PlanResult, ...] = ()
    plots: dict[str, bytes] = field(default_factory=dict)

    @property
    def cancelled(self) -> bool:
        """True when should_stop ended the job early."""
        return self.primary.cancelled or any(r.cancelled for r in self.comparison)


def build_scenario(spec: ScenarioSpec, terrain_loader: TerrainLoader) -> Scenario:
    """The domain scenario for a scenario spec; file terrain comes through `terrain_loader`."""
    source = spec.terrain
    if isinstance(source, FileTerrain | PngTerrain):
        terrain = terrain_loader(source)
    else:
        cells_x = int(np.ceil(spec.bounds.x[1] / source.cell_size))
        cells_y = int(np.ceil(spec.bounds.y[1] / source.cell_size))
        peaks = [GaussianPeak(p.x, p.y, p.height, p.sigma_x, p.sigma_y) for p in source.peaks]
        terrain = gaussian_terrain(cells_x, cells_y, peaks, source.base, source.cell_size)
    return Scenario(
        terrain=terrain,
        bounds=Bounds(spec.bounds.x[0], spec.bounds.x[1], spec.bounds.y[0], spec.bounds.y[1]),
        start=spec.start,
        goal=spec.goal,
        z_min=spec.altitude.min,
        z_max=spec.altitude.max,
        n_waypoints=spec.waypoints,
        threats=tuple(Threat(t.x, t.y, t.radius) for t in spec.threats),
        no_fly_zones=tuple(
            NoFlyZone(z.x_min, z.x_max, z.y_min, z.y_max, float("inf") if z.top is None else z.top)
            for z in spec.no_fly_zones
        ),
        uav_size=spec.uav_size,
        danger_margin=spec.danger_margin,
        sampling=spec.terrain_sampling,
        name=spec.name,
    )


def plan_hash(spec: PlanningJobSpec, terrain: Terrain) -> str:
    """The results-cache key of a job: its normalized spec hash, joined for a terrain file by the map's own
    fingerprint, so that replacing the file under the same name never serves a result computed on the old map."""
    normalized = normalized_spec_hash(spec)
    if isinstance(spec.scenario.terrain, GaussianTerrain):
        return normalized
    return hashlib.sha256(f"{normalized}:{terrain.fingerprint}".encode()).hexdigest()


def run_order(spec: PlanningJobSpec) -> list[str]:
    """The optimizers a job runs: the requested one, then the comparison ones not already run."""
    names: list[str] = [spec.optimizer.name]
    names += [n for n in spec.compare if n not in names]
    return names


def _iterations_of(spec: PlanningJobSpec, name: str) -> int:
    if name == "astar":
        return 1
    o = spec.optimizer
    return Budget(o.population, o.iterations, o.max_evaluations).generations


def planned_iterations(spec: PlanningJobSpec) -> int:
    """Total iterations over every run of the job (the denominator of progress)."""
    return sum(_iterations_of(spec, name) for name in run_order(spec))


def run_job(
    spec: PlanningJobSpec,
    *,
    terrain_loader: TerrainLoader | None = None,
    on_iteration: OnJobIteration | None = None,
    should_stop: ShouldStop | None = None,
    render_plots: bool = True,
) -> PlanOutcome:
    """Run a planning job (the service's evaluation limit is its job kind's admission check, run before this)."""
    names = run_order(spec)
    o = spec.optimizer
    scenario = build_scenario(spec.scenario, terrain_loader or TerrainFileLoader())
    c = spec.cost
    weights = CostWeights(c.length, c.threat, c.altitude, c.smoothness, c.turn_limit_deg, c.climb_limit_deg)
    budget = Budget(o.population, o.iterations, o.max_evaluations)
    total = planned_iterations(spec)
    done = 0
    results: list[PlanResult] = []
    for name in names:
        offset = done

        def report(it: int, best: float, _progress: float, offset: int = offset, name: str = name) -> None:
            if on_iteration is not None:
                on_iteration(name, offset + it, best, min(1.0, (offset + it) / total))

        encoding = None if name == "astar" else spec.encoding
        if name == "spso":
            encoding = "spherical"
        result = plan(
            scenario,
            PlannerConfig(name, budget, encoding),
            weights=weights,
            seed=spec.seed,
            on_iteration=report,
            should_stop=should_stop,
        )
        results.append(result)
        done += _iterations_of(spec, name)
        if result.cancelled or (should_stop is not None and should_stop()):
            break
    primary, others = results[0], tuple(results[1:])
    cancelled = primary.cancelled or any(r.cancelled for r in others) or len(results) < len(names)
    if cancelled and not primary.cancelled:
        primary = replace(primary, cancelled=True)
    if render_plots and not cancelled:
        # Imported here: matplotlib builds its font cache on import, which a read-only image redoes on every start
        # (tens of seconds under load, unresponsive to SIGTERM); only a job that draws needs it.
        from path_planner.plots import render_all

        plots = render_all(scenario, primary, others)
    else:
        plots = {}
    return PlanOutcome(plan_hash(spec, scenario.terrain), scenario, primary, others, plots)


def _points(array: FloatArray, limit: int) -> list[tuple[float, float, float]]:
    idx = np.unique(np.linspace(0, len(array) - 1, min(limit, len(array))).round().astype(int))
    return [(float(p[0]), float(p[1]), float(p[2])) for p in array[idx]]


def completed_message(
    job_id: str, outcome: PlanOutcome, *, cached: bool = False, plot_names: list[str] | None = None
) -> PlanCompleted:
    """The PlanCompleted event for an outcome (the flown path thinned to at most 400 points)."""
    r = outcome.primary
    return PlanCompleted(
        job_id=job_id,
        spec_hash=outcome.spec_hash,
        optimizer=r.optimizer,
        encoding=r.encoding,
        best_cost=r.best_cost,
        cost=CostTerms(**r.cost),
        feasible=r.feasible,
        min_clearance=r.flight.min_clearance,
        problems=list(r.problems),
        waypoints=_points(r.waypoints, len(r.waypoints)),
        path=_points(r.flight.points, MAX_PATH_POINTS),
        fitness_curve=[float(v) for v in r.curve],
        evaluations=r.evaluations,
        runtime_s=r.runtime_s,
        comparison=[
            ComparedRun(
                optimizer=c.optimizer,
                encoding=c.encoding,
                best_cost=c.best_cost,
                feasible=c.feasible,
                min_clearance=c.flight.min_clearance,
                evaluations=c.evaluations,
                runtime_s=c.runtime_s,
                fitness_curve=[float(v) for v in c.curve],
            )
            for c in outcome.comparison
        ],
        cached=cached,
        plots=sorted(outcome.plots) if plot_names is None else plot_names,
    )


def load_spec_file(path: Path) -> PlanningJobSpec:
    """Read and validate a YAML (or JSON) job spec, such as the files in `scenarios/`."""
    data = safe_load(path.read_text(encoding="utf-8"))
    return PlanningJobSpec.model_validate(data)
