"""IBOA puts a step that leaves the box on the bound, so an optimum on the box's edge is reached exactly."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from path_planner.domain.cost import PathCost
from path_planner.domain.optimizers import Budget
from path_planner.domain.planner import PlannerConfig, plan
from path_planner.domain.scenario import Scenario


def test_the_straight_line_is_found_exactly_where_it_is_the_best_path(flat: Callable[..., Scenario]) -> None:
    # No threats, level ground, the start in the middle of the band: every waypoint left at the start (step length
    # 0, the lower bound of the spherical encoding) makes the path one straight leg to the goal, the best there is.
    scenario = flat(n_waypoints=5, goal=(90.0, 60.0, 150.0))
    at_start = np.tile(np.asarray(scenario.start, dtype=np.float64), (1, 5, 1))
    straight = float(PathCost(scenario)(at_start)[0])
    for seed in range(5):
        result = plan(scenario, PlannerConfig("iboa", Budget(40, 60)), seed=seed)
        # Exactly: with bounce-back the five seeds ended 3e-11 to 7e-6 above it.
        assert result.best_cost == straight
