"""Plan one path: encode, optimise, decode, cost, smooth and check; the pure core of a planning job."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from path_planner.domain.cost import CostWeights, PathCost
from path_planner.domain.encoding import make_encoding
from path_planner.domain.errors import PlanningError
from path_planner.domain.flight import FlightPath, flight_path
from path_planner.domain.optimizers import Budget, make_optimizer
from path_planner.domain.optimizers.astar import astar_plan
from path_planner.domain.optimizers.base import OnIteration, Scores, ShouldStop
from path_planner.domain.scenario import Scenario
from path_planner.domain.types import FloatArray

OPTIMIZER_NAMES = ("boa", "iboa", "pso", "spso", "lshade", "jso", "astar")
DEFAULT_ENCODING = {
    "boa": "spherical",
    "iboa": "spherical",
    "pso": "cartesian",
    "spso": "spherical",
    "lshade": "spherical",
    "jso": "spherical",
}


@dataclass(frozen=True)
class PlannerConfig:
    """Which optimizer, in which encoding (None: the optimizer's own), with which budget."""

    optimizer: str
    budget: Budget
    encoding: str | None = None

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZER_NAMES:
            raise PlanningError("optimizer.name", f"unknown optimizer {self.optimizer!r}")
        if self.encoding not in (None, "spherical", "cartesian"):
            raise PlanningError("encoding", f"unknown encoding {self.encoding!r}")
        if self.optimizer == "spso" and self.encoding == "cartesian":
            raise PlanningError("encoding", "spso is PSO in the spherical encoding; use pso for cartesian")

    @property
    def resolved_encoding(self) -> str:
        """The encoding actually used ("grid" for A*)."""
        if self.optimizer == "astar":
            return "grid"
        return self.encoding or DEFAULT_ENCODING[self.optimizer]


@dataclass(frozen=True)
class PlanResult:
    """Best waypoints (x, y, height above ground), cost terms, flight path, curve, evaluations, runtime."""

    optimizer: str
    encoding: str
    waypoints: FloatArray
    cost: dict[str, float]
    collisions: int
    flight: FlightPath
    curve: FloatArray
    evaluations: int
    runtime_s: float
    cancelled: bool

    @property
    def best_cost(self) -> float:
        """The weighted total cost of the best waypoints."""
        return self.cost["total"]

    @property
    def problems(self) -> tuple[str, ...]:
        """Why the result is infeasible (empty when feasible)."""
        extra = (f"waypoint legs collide {self.collisions} time(s)",) if self.collisions else ()
        return extra + self.flight.problems

    @property
    def feasible(self) -> bool:
        """True when the waypoint legs and the flown path pass every check."""
        return not self.problems


def plan(
    scenario: Scenario,
    config: PlannerConfig,
    *,
    weights: CostWeights | None = None,
    seed: int = 0,
    on_iteration: OnIteration | None = None,
    should_stop: ShouldStop | None = None,
) -> PlanResult:
    """Run one optimizer on the scenario and return its best path, checked; never raises for infeasibility."""
    cost = PathCost(scenario, weights)
    t0 = time.perf_counter()
    if config.optimizer == "astar":
        grid = astar_plan(scenario)
        waypoints = grid.waypoints
        breakdown = cost.evaluate(waypoints[None])
        curve = np.array([breakdown.total[0]])
        evaluations = 1
        cancelled = False
        if on_iteration is not None:
            on_iteration(1, float(breakdown.total[0]), 1.0)
    else:
        encoding = make_encoding(config.resolved_encoding, scenario)

        def objective(vectors: FloatArray) -> Scores:
            b = cost.evaluate(encoding.decode(vectors))
            return Scores(b.total, b.base, b.violations.astype(np.float64))

        result = make_optimizer(config.optimizer).minimize(
            objective,
            encoding.lower,
            encoding.upper,
            config.budget,
            seed=seed,
            on_iteration=on_iteration,
            should_stop=should_stop,
        )
        waypoints = encoding.decode(result.best_x[None])[0]
        breakdown = cost.evaluate(waypoints[None])
        curve = result.curve
        evaluations = result.evaluations
        cancelled = result.cancelled
    return PlanResult(
        optimizer=config.optimizer,
        encoding=config.resolved_encoding,
        waypoints=waypoints,
        cost=breakdown.row(0),
        collisions=int(breakdown.collisions[0] + breakdown.under_ground[0]),
        flight=flight_path(scenario, waypoints),
        curve=curve,
        evaluations=evaluations,
        runtime_s=time.perf_counter() - t0,
        cancelled=cancelled,
    )
