"""The 3-D view of a planning result: terrain, threats and the flown path as a plotly.js figure (plain JSON).

Only analytic (Gaussian) terrain is drawn: it is rebuilt here from the request, the planner's formula on a
coarser grid. A heightmap file lives with the planner, so for one of those the view shows threats and path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

GRID = 60
RING = 40


def gaussian_heights(
    terrain: Mapping[str, Any], xs: npt.NDArray[np.float64], ys: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Heights on the grid `ys` x `xs`: base plus each hill's height·exp(−((x−x0)/sx)²/2 − ((y−y0)/sy)²/2)."""
    heights = np.full((len(ys), len(xs)), float(terrain.get("base", 0.0)))
    for p in terrain.get("peaks") or []:
        along_x = np.exp(-0.5 * ((xs - p["x"]) / p["sigma_x"]) ** 2)
        along_y = np.exp(-0.5 * ((ys - p["y"]) / p["sigma_y"]) ** 2)
        heights += float(p["height"]) * np.outer(along_y, along_x)
    return heights


def _threat(threat: Mapping[str, Any], low: float, high: float, first: bool) -> dict[str, Any]:
    angles = [2 * math.pi * i / RING for i in range(RING + 1)]
    xs = [threat["x"] + threat["radius"] * math.cos(a) for a in angles]
    ys = [threat["y"] + threat["radius"] * math.sin(a) for a in angles]
    return {
        "type": "surface",
        "x": [xs, xs],
        "y": [ys, ys],
        "z": [[low] * len(xs), [high] * len(xs)],
        "opacity": 0.35,
        "showscale": False,
        "colorscale": [[0, "#dc2626"], [1, "#dc2626"]],
        "name": "threat",
        "showlegend": first,
        "hoverinfo": "name",
    }


def _line(points: Sequence[Sequence[float]], name: str, colour: str, mode: str) -> dict[str, Any]:
    return {
        "type": "scatter3d",
        "mode": mode,
        "x": [p[0] for p in points],
        "y": [p[1] for p in points],
        "z": [p[2] for p in points],
        "name": name,
        "line": {"color": colour, "width": 6},
        "marker": {"size": 4, "color": colour},
    }


def plan_figure(spec: Mapping[str, Any] | None, result: Mapping[str, Any]) -> dict[str, Any] | None:
    """A figure of the result's path over the request's terrain and threats; None without a path to draw."""
    path = result.get("path") or result.get("waypoints") or []
    if not path:
        return None
    scenario = (spec or {}).get("scenario") or {}
    data: list[dict[str, Any]] = []
    zs = [p[2] for p in path]
    terrain = scenario.get("terrain") or {}
    bounds = scenario.get("bounds")
    if terrain.get("kind") == "gaussian" and bounds:
        xs = np.linspace(bounds["x"][0], bounds["x"][1], GRID)
        ys = np.linspace(bounds["y"][0], bounds["y"][1], GRID)
        heights = gaussian_heights(terrain, xs, ys)
        zs += [float(heights.min()), float(heights.max())]
        data.append(
            {
                "type": "surface",
                "x": xs.round(3).tolist(),
                "y": ys.round(3).tolist(),
                "z": heights.round(3).tolist(),
                "colorscale": "Earth",
                "showscale": False,
                "name": "terrain",
            }
        )
    low, high = min(zs), max(zs)
    data += [_threat(t, low, high, i == 0) for i, t in enumerate(scenario.get("threats") or [])]
    data.append(_line(path, "path", "#2563eb", "lines"))
    data.append(_line([path[0], path[-1]], "start and goal", "#111827", "markers"))
    layout = {
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
        "scene": {
            "aspectmode": "manual",
            "aspectratio": {"x": 1, "y": 1, "z": 0.4},
            "zaxis": {"title": {"text": "z (m)"}},
        },
        "legend": {"x": 0, "y": 1},
    }
    return {"data": data, "layout": layout, "terrain_drawn": bool(data and data[0]["name"] == "terrain")}
