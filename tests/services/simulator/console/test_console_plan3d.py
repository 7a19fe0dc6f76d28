"""The 3-D planning view's figure: the planner's terrain formula, threats as cylinders, the path, start and goal."""

from __future__ import annotations

import math

import numpy as np
from simulator.console.plan3d import GRID, gaussian_heights, plan_figure

SPEC = {
    "scenario": {
        "terrain": {
            "kind": "gaussian",
            "base": 10,
            "peaks": [{"x": 70, "y": 60, "height": 80, "sigma_x": 20, "sigma_y": 25}],
        },
        "bounds": {"x": [1, 200], "y": [1, 200]},
        "threats": [{"x": 100, "y": 100, "radius": 20}, {"x": 150, "y": 40, "radius": 10}],
    }
}
PATH = [[15.0, 15.0, 50.0], [100.0, 140.0, 130.0], [185.0, 185.0, 50.0]]


def test_gaussian_heights_follow_the_planners_formula() -> None:
    terrain = SPEC["scenario"]["terrain"]  # type: ignore[index]
    heights = gaussian_heights(terrain, np.array([70.0, 90.0]), np.array([60.0, 85.0]))

    assert heights[0, 0] == 90.0
    assert math.isclose(heights[1, 1], 10 + 80 * math.exp(-0.5 * (20 / 20) ** 2 - 0.5 * (25 / 25) ** 2))


def test_the_figure_has_terrain_a_cylinder_per_threat_the_path_and_its_ends() -> None:
    figure = plan_figure(SPEC, {"path": PATH, "waypoints": [[100, 140, 40]]})

    assert figure is not None and figure["terrain_drawn"] is True
    names = [trace["name"] for trace in figure["data"]]
    assert names == ["terrain", "threat", "threat", "path", "start and goal"]
    terrain, threat, path, ends = figure["data"][0], figure["data"][1], figure["data"][3], figure["data"][4]
    assert len(terrain["z"]) == GRID and len(terrain["z"][0]) == GRID
    assert min(threat["x"][0]) == 80.0 and max(threat["x"][0]) == 120.0
    # The cylinders span from the lowest ground to the highest point drawn.
    assert math.isclose(threat["z"][0][0], 10.0) and math.isclose(threat["z"][1][0], 130.0)
    assert path["z"] == [50.0, 130.0, 50.0]
    assert ends["x"] == [15.0, 185.0]


def test_without_the_request_only_the_path_is_drawn_and_without_a_path_nothing() -> None:
    bare = plan_figure(None, {"waypoints": PATH})

    assert bare is not None and bare["terrain_drawn"] is False
    assert [t["name"] for t in bare["data"]] == ["path", "start and goal"]
    assert plan_figure(SPEC, {"path": [], "waypoints": []}) is None
