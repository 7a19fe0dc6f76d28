"""Path-planning messages: the job spec (PlanRequested), progress, outcome events and the cancel control.

Coordinates follow the SPSO benchmark: x, y in map metres (1-based on a heightmap), every z of the
start, goal and waypoints a height above the ground; flown paths carry absolute altitude.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.config import JsonDict

from quartet_contracts.registry import Message, event_type
from quartet_contracts.schemas.claimcheck import ResultRef, take

MAX_POPULATION = 5_000
MAX_ITERATIONS = 20_000
MAX_EVALUATIONS = 2_000_000
MAX_WAYPOINTS = 50
MAX_THREATS = 200
MAX_ZONES = 500
MAX_TERRAIN_CELLS = 4_000_000

OptimizerName = Literal["boa", "iboa", "pso", "spso", "lshade", "jso", "astar"]
SHRINKING_POPULATION = ("lshade", "jso")
SHRINKING_POPULATION_MIN = 4
"""L-SHADE and jSO shrink their population linearly down to 4 individuals."""
EncodingName = Literal["spherical", "cartesian"]
Point3 = tuple[float, float, float]
Range = tuple[float, float]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class FileTerrain(Message):
    """A heightmap file (.npz, .npy, .tif/.tiff), resolved by the service under its terrain directory."""

    kind: Literal["file"] = "file"
    path: str = Field(min_length=1)
    array: str = "height"
    height_scale: Finite = Field(default=1.0, gt=0)
    cell_size: Finite = Field(default=1.0, gt=0)


class PngTerrain(Message):
    """A grayscale PNG heightmap: altitude = pixel value × height_scale + offset."""

    kind: Literal["png"] = "png"
    path: str = Field(min_length=1)
    height_scale: Finite = Field(default=1.0, gt=0)
    offset: Finite = 0.0
    cell_size: Finite = Field(default=1.0, gt=0)


class GaussianPeak(Message):
    """One analytic hill."""

    x: Finite
    y: Finite
    height: Finite
    sigma_x: Finite = Field(gt=0)
    sigma_y: Finite = Field(gt=0)


class GaussianTerrain(Message):
    """Analytic Gaussian peaks rasterised on a grid covering the bounds."""

    kind: Literal["gaussian"] = "gaussian"
    base: Finite = 0.0
    peaks: list[GaussianPeak] = Field(default_factory=list, max_length=100)
    cell_size: Finite = Field(default=1.0, gt=0)


TerrainSource = Annotated[FileTerrain | PngTerrain | GaussianTerrain, Field(discriminator="kind")]


class Bounds(Message):
    """The map rectangle the path stays in."""

    x: Range
    y: Range

    @field_validator("x", "y")
    @classmethod
    def _ordered(cls, v: Range) -> Range:
        if not (math.isfinite(v[0]) and math.isfinite(v[1]) and v[0] < v[1]):
            raise ValueError(f"must be a finite [min, max] with min < max, got [{v[0]:.6g}, {v[1]:.6g}]")
        return v


class AltitudeBand(Message):
    """Allowed height above ground."""

    min: Finite = Field(default=100.0, ge=0)
    max: Finite = 200.0

    @model_validator(mode="after")
    def _ordered(self) -> AltitudeBand:
        if not self.max > self.min:
            raise ValueError(f"altitude.max ({self.max:g}) must exceed altitude.min ({self.min:g})")
        return self


class ThreatSpec(Message):
    """A vertical cylinder of infinite height; z is informational (the paper lists it)."""

    x: Finite
    y: Finite
    radius: Finite = Field(gt=0)
    z: Finite | None = None


class NoFlyZoneSpec(Message):
    """An axis-aligned box from the ground up to absolute altitude `top` (None: unbounded)."""

    x_min: Finite
    x_max: Finite
    y_min: Finite
    y_max: Finite
    top: Finite | None = None

    @model_validator(mode="after")
    def _ordered(self) -> NoFlyZoneSpec:
        if not (self.x_min < self.x_max and self.y_min < self.y_max):
            raise ValueError("no-fly zone needs x_min < x_max and y_min < y_max")
        return self


class ScenarioSpec(Message):
    """Map, terrain, threats, start and goal of a planning job."""

    name: str = Field(default="scenario", max_length=200)
    terrain: TerrainSource
    bounds: Bounds
    altitude: AltitudeBand = AltitudeBand()
    waypoints: int = Field(default=10, ge=1, le=MAX_WAYPOINTS)
    threats: list[ThreatSpec] = Field(default_factory=list, max_length=MAX_THREATS)
    no_fly_zones: list[NoFlyZoneSpec] = Field(default_factory=list, max_length=MAX_ZONES)
    uav_size: Finite = Field(default=1.0, ge=0)
    danger_margin: Finite = Field(default=10.0, ge=0)
    terrain_sampling: Literal["nearest", "bilinear"] = "nearest"
    start: Point3
    goal: Point3

    @field_validator("bounds")
    @classmethod
    def _rasterisable(cls, v: Bounds, info: ValidationInfo) -> Bounds:
        # Analytic terrain is rasterised from the origin to the far corner of the bounds at its cell size.
        terrain = info.data.get("terrain")
        if isinstance(terrain, GaussianTerrain):
            columns, rows = v.x[1] / terrain.cell_size, v.y[1] / terrain.cell_size
            # In floats: huge bounds over a tiny cell give inf here, where integers overflowed or ran to 600 digits.
            needed = columns * rows
            if not (needed <= MAX_TERRAIN_CELLS and math.ceil(columns) * math.ceil(rows) <= MAX_TERRAIN_CELLS):
                # Exact while it reads well; beyond that a magnitude, so a huge count never prints 600 digits.
                if needed < 1e12:
                    count = f"{math.ceil(columns) * math.ceil(rows):,}"
                else:
                    count = f"about {needed:.3g}" if math.isfinite(needed) else "more than 1e308"
                raise ValueError(
                    f"the Gaussian terrain up to ({v.x[1]:.6g}, {v.y[1]:.6g}) at cell size {terrain.cell_size:.6g} "
                    f"needs {count} cells, over the maximum {MAX_TERRAIN_CELLS:,}; use a larger cell_size"
                )
        return v

    @field_validator("start", "goal")
    @classmethod
    def _inside(cls, v: Point3, info: ValidationInfo) -> Point3:
        if not all(math.isfinite(c) for c in v):
            raise ValueError("coordinates must be finite")
        if v[2] < 0:
            raise ValueError(f"z is a height above ground and must be >= 0, got {v[2]:g}")
        bounds = info.data.get("bounds")
        if isinstance(bounds, Bounds):
            (x0, x1), (y0, y1) = bounds.x, bounds.y
            if not (x0 <= v[0] <= x1 and y0 <= v[1] <= y1):
                raise ValueError(
                    f"{info.field_name} ({v[0]:g}, {v[1]:g}) is outside bounds x {x0:g}..{x1:g}, y {y0:g}..{y1:g}"
                )
        threats = info.data.get("threats") or []
        size = info.data.get("uav_size", 1.0)
        for i, t in enumerate(threats):
            if math.hypot(v[0] - t.x, v[1] - t.y) < t.radius + size:
                raise ValueError(f"{info.field_name} ({v[0]:g}, {v[1]:g}) is inside threats[{i}]")
        return v

    @model_validator(mode="after")
    def _distinct(self) -> ScenarioSpec:
        if self.start[:2] == self.goal[:2]:
            raise ValueError("goal must differ from start in x or y")
        return self


class CostWeightsSpec(Message):
    """Weights of length (J1), threat (J2), altitude (J3) and smoothness (J4); the paper's by default."""

    length: Finite = Field(default=5.0, ge=0)
    threat: Finite = Field(default=1.0, ge=0)
    altitude: Finite = Field(default=10.0, ge=0)
    smoothness: Finite = Field(default=1.0, ge=0)
    turn_limit_deg: Finite = Field(default=45.0, ge=0, le=180)
    climb_limit_deg: Finite = Field(default=45.0, ge=0, le=180)


class OptimizerSpec(Message):
    """Optimizer and budget; population × iterations evaluations, optionally capped by max_evaluations."""

    name: OptimizerName = "iboa"
    population: int = Field(default=100, ge=2, le=MAX_POPULATION)
    iterations: int = Field(default=100, ge=1, le=MAX_ITERATIONS)
    max_evaluations: int | None = Field(default=None, gt=0, le=MAX_EVALUATIONS)

    @model_validator(mode="after")
    def _budget(self) -> OptimizerSpec:
        total = self.population * self.iterations
        if total > MAX_EVALUATIONS:
            raise ValueError(
                f"optimizer.population × optimizer.iterations = {total:,} exceeds the maximum {MAX_EVALUATIONS:,}"
            )
        if self.max_evaluations is not None and self.max_evaluations < self.population:
            raise ValueError(
                f"optimizer.max_evaluations ({self.max_evaluations}) is below one population ({self.population})"
            )
        return self

    @property
    def evaluations(self) -> int:
        """Evaluations this spec may spend."""
        total = self.population * self.iterations
        return total if self.max_evaluations is None else min(total, self.max_evaluations)


class PlanningJobSpec(Message):
    """A planning job: scenario, cost weights, encoding, optimizer with budget, seed, optional comparison."""

    scenario: ScenarioSpec
    cost: CostWeightsSpec = CostWeightsSpec()
    encoding: EncodingName | None = None
    optimizer: OptimizerSpec = OptimizerSpec()
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    compare: list[OptimizerName] = Field(default_factory=list, max_length=6)

    @field_validator("compare")
    @classmethod
    def _unique(cls, v: list[OptimizerName]) -> list[OptimizerName]:
        if len(set(v)) != len(v):
            raise ValueError("compare lists an optimizer twice")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> PlanningJobSpec:
        if self.encoding == "cartesian" and ("spso" in self.compare or self.optimizer.name == "spso"):
            raise ValueError("encoding: spso is PSO in the spherical encoding and cannot run cartesian")
        shrinking = sorted({self.optimizer.name, *self.compare} & set(SHRINKING_POPULATION))
        if shrinking and self.optimizer.population < SHRINKING_POPULATION_MIN:
            raise ValueError(
                f"optimizer.population: {' and '.join(shrinking)} reduce the population to "
                f"{SHRINKING_POPULATION_MIN} and need at least that many, got {self.optimizer.population}"
            )
        runs = 1 + sum(1 for name in self.compare if name != self.optimizer.name)
        if runs * self.optimizer.evaluations > MAX_EVALUATIONS:
            raise ValueError(
                f"compare: {runs} runs × {self.optimizer.evaluations:,} evaluations exceed {MAX_EVALUATIONS:,}"
            )
        return self


def normalized_spec_hash(spec: PlanningJobSpec) -> str:
    """sha256 of the spec as canonical JSON (defaults filled, keys sorted), the results-cache key."""
    data = spec.model_dump(mode="json")
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


PLAN_EXAMPLE: JsonDict = {
    "scenario": {
        "name": "two-hills",
        "terrain": {
            "kind": "gaussian",
            "base": 10,
            "peaks": [
                {"x": 120, "y": 100, "height": 150, "sigma_x": 40, "sigma_y": 30},
                {"x": 220, "y": 220, "height": 200, "sigma_x": 50, "sigma_y": 50},
            ],
        },
        "bounds": {"x": [1, 300], "y": [1, 300]},
        "altitude": {"min": 30, "max": 90},
        "waypoints": 6,
        "threats": [{"x": 150, "y": 160, "radius": 30}],
        "start": [20, 20, 60],
        "goal": [280, 280, 60],
    },
    "optimizer": {"name": "iboa", "population": 100, "iterations": 100},
    "seed": 0,
    "compare": ["spso", "boa"],
}
"""A small job (three optimizers on two hills and a threat), the API documentation's example."""


@event_type("quartet.planning.PlanRequested.v1", topic="planning.jobs")
class PlanRequested(PlanningJobSpec):
    """A path-planning job was submitted; its data is the job spec."""

    model_config = ConfigDict(json_schema_extra={"examples": [PLAN_EXAMPLE]})


@event_type("quartet.planning.PlanProgressed.v1", topic="planning.progress")
class PlanProgressed(Message):
    """A planning job finished an iteration."""

    job_id: str = Field(min_length=1)
    optimizer: OptimizerName | None = None
    iteration: int = Field(ge=0)
    iterations: int = Field(ge=1)
    progress: float = Field(ge=0.0, le=1.0)
    best_cost: Finite


class CostTerms(Message):
    """Weighted total and the raw J1..J4 terms of a path."""

    total: Finite
    length: Finite
    threat: Finite
    altitude: Finite
    smoothness: Finite


class ComparedRun(Message):
    """One optimizer's run on the same scenario, for the fitness chart."""

    optimizer: OptimizerName
    encoding: str
    best_cost: Finite
    feasible: bool
    min_clearance: Finite | None = None
    evaluations: int = Field(ge=0)
    runtime_s: float = Field(ge=0)
    fitness_curve: list[Finite] = Field(default_factory=list)


@event_type("quartet.planning.PlanCompleted.v1", topic="planning.results")
class PlanCompleted(Message):
    """A planning job produced a path (feasible or best-effort).

    `min_clearance` is the least height above ground (m) along the flown path, which is flown in absolute
    altitude between the waypoints; negative means it passes under the ground (and `feasible` is false).
    On the results topic the flown path and the fitness curves are left out and `result_ref` names where they
    are stored; `GET /jobs/{id}/result` answers with them put back.
    """

    job_id: str = Field(min_length=1)
    spec_hash: str
    optimizer: OptimizerName
    encoding: str
    best_cost: Finite
    cost: CostTerms
    feasible: bool
    min_clearance: Finite | None = None
    problems: list[str] = Field(default_factory=list)
    waypoints: list[Point3]
    path: list[Point3] = Field(default_factory=list)
    fitness_curve: list[Finite] = Field(default_factory=list)
    evaluations: int = Field(ge=0)
    runtime_s: float = Field(ge=0)
    comparison: list[ComparedRun] = Field(default_factory=list)
    cached: bool = False
    plots: list[str] = Field(default_factory=list)
    result_ref: ResultRef | None = None


def split_plan_result(result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A PlanCompleted as JSON split into its bounded summary and its large parts (path and fitness curves).

    Waypoints stay (at most MAX_WAYPOINTS), and so does each compared run's summary; only its curve moves.
    """
    summary = dict(result)
    parts = take(summary, ("path", "fitness_curve"))
    runs = [dict(run) for run in summary.get("comparison") or []]
    curves = [take(run, ("fitness_curve",)) for run in runs]
    if any(curves):
        summary["comparison"] = runs
        parts["comparison"] = curves
    return summary, parts


@event_type("quartet.planning.PlanFailed.v1", topic="planning.results")
class PlanFailed(Message):
    """A planning job could not run (bad input or an internal error)."""

    job_id: str = Field(min_length=1)
    error: str
    field: str | None = None
    retryable: bool = False


@event_type("quartet.planning.PlanCancelled.v1", topic="planning.results")
class PlanCancelled(Message):
    """A planning job was cancelled before it finished."""

    job_id: str = Field(min_length=1)
    iteration: int = Field(default=0, ge=0)
    best_cost: Finite | None = None


@event_type("quartet.planning.CancelPlan.v1", topic="planning.control")
class CancelPlan(Message):
    """Ask the planner to cancel a job at its next iteration."""

    job_id: str = Field(min_length=1)
