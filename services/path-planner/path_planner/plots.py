"""Figures as PNG bytes: 3-D terrain with threats and path, top view, fitness curve(s).

Figures are built with `matplotlib.figure.Figure` directly (Agg canvas, no pyplot state), so rendering
is safe from worker threads and leaks no open figures.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Rectangle
from mpl_toolkits.mplot3d import Axes3D

from path_planner.domain.cost import INFEASIBLE
from path_planner.domain.planner import PlanResult
from path_planner.domain.scenario import Scenario
from path_planner.domain.types import FloatArray

_SURFACE_CELLS = 90
_COLOURS = {
    "iboa": "#d62728",
    "boa": "#ff7f0e",
    "spso": "#1f77b4",
    "pso": "#2ca02c",
    "astar": "#9467bd",
    "lshade": "#8c564b",
    "jso": "#17becf",
}
_LABELS = {"iboa": "IBOA", "boa": "BOA", "spso": "SPSO", "pso": "PSO", "astar": "A*", "lshade": "L-SHADE", "jso": "jSO"}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _grid(scenario: Scenario, cells: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    b = scenario.bounds
    nx = max(2, min(cells, int(b.x_max - b.x_min) + 1))
    ny = max(2, min(cells, int(b.y_max - b.y_min) + 1))
    gx, gy = np.meshgrid(np.linspace(b.x_min, b.x_max, nx), np.linspace(b.y_min, b.y_max, ny))
    return gx, gy, scenario.terrain.height_at(gx, gy, "bilinear")


def run_label(result: PlanResult) -> str:
    """The legend entry of a run: optimizer, cost, the flown path's minimum clearance, and whether infeasible."""
    status = "" if result.feasible else ", infeasible"
    name = _LABELS.get(result.optimizer, result.optimizer)
    return f"{name} (cost {result.best_cost:,.0f}, min clearance {result.flight.min_clearance:,.1f} m{status})"


def path_3d(scenario: Scenario, results: Sequence[PlanResult], title: str | None = None) -> bytes:
    """Terrain surface (downsampled), threat cylinders, no-fly boxes and the flown paths in 3-D."""
    gx, gy, gz = _grid(scenario, _SURFACE_CELLS)
    fig = Figure(figsize=(9, 7))
    ax = fig.add_subplot(111, projection="3d")
    # Painter's order set by hand: mplot3d's per-artist depth sort hides the path under the surface.
    ax.computed_zorder = False
    ax.plot_surface(gx, gy, gz, cmap="terrain", linewidth=0, antialiased=False, alpha=0.9, zorder=0)
    floor = float(gz.min())
    top = max([float(gz.max()) + scenario.z_min, *(float(r.flight.points[:, 2].max()) + 30.0 for r in results)])
    _obstacles_3d(ax, scenario, floor, top)
    for r in results:
        _flight_3d(ax, scenario, r)
    for name, pt, marker in (("start", scenario.start, "^"), ("goal", scenario.goal, "*")):
        g = float(scenario.terrain.height_at(np.array(pt[0]), np.array(pt[1]), scenario.sampling))
        ax.scatter(
            [pt[0]], [pt[1]], [pt[2] + g], color="black", marker=marker, s=90, label=name, depthshade=False, zorder=7
        )
    b = scenario.bounds
    ax.set_xlim(b.x_min, b.x_max)
    ax.set_ylim(b.y_min, b.y_max)
    ax.set_zlim(floor, top)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_zlabel("altitude (m)")
    ax.view_init(elev=45, azim=-120)
    ax.set_title(title or f"{scenario.name}: 3-D path")
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def _obstacles_3d(ax: Axes3D, scenario: Scenario, floor: float, top: float) -> None:
    """Threats as cylinders from their ground up to `top`, no-fly zones as boxes from `floor`."""
    theta = np.linspace(0, 2 * np.pi, 40)
    for th in scenario.threats:
        cx = th.x + th.radius * np.cos(theta)
        cy = th.y + th.radius * np.sin(theta)
        base = float(scenario.terrain.height_at(np.array(th.x), np.array(th.y), "bilinear")) - 10.0
        zz = np.array([np.full_like(theta, base), np.full_like(theta, top)])
        ax.plot_surface(np.array([cx, cx]), np.array([cy, cy]), zz, color="#c0392b", alpha=0.25, linewidth=0, zorder=1)
    for z in scenario.no_fly_zones:
        ax.bar3d(
            z.x_min,
            z.y_min,
            floor,
            z.x_max - z.x_min,
            z.y_max - z.y_min,
            min(z.top, top) - floor,
            color="#7f8c8d",
            alpha=0.35,
            shade=True,
            zorder=1,
        )


def _flight_3d(ax: Axes3D, scenario: Scenario, result: PlanResult) -> None:
    """One optimizer's flown path, and its waypoints above the ground."""
    colour = _COLOURS.get(result.optimizer, "k")
    p = result.flight.points
    ax.plot(p[:, 0], p[:, 1], p[:, 2], color=colour, linewidth=2.5, label=run_label(result), zorder=5)
    w = result.waypoints
    ground = scenario.terrain.height_at(w[:, 0], w[:, 1], scenario.sampling)
    ax.scatter(w[:, 0], w[:, 1], w[:, 2] + ground, color=colour, s=12, depthshade=False, zorder=6)


def top_view(scenario: Scenario, results: Sequence[PlanResult], title: str | None = None) -> bytes:
    """Terrain contours seen from above with threat circles (and danger margins), no-fly boxes and paths."""
    gx, gy, gz = _grid(scenario, 300)
    fig = Figure(figsize=(8, 7))
    ax = fig.subplots()
    if float(np.ptp(gz)) > 1e-6:
        filled = ax.contourf(gx, gy, gz, levels=20, cmap="terrain")
        ax.contour(gx, gy, gz, levels=20, colors="k", linewidths=0.3, alpha=0.4)
        fig.colorbar(filled, ax=ax, label="ground altitude (m)")
    else:
        ax.set_facecolor("#e8efe0")
    for th in scenario.threats:
        ax.add_patch(Circle((th.x, th.y), th.radius, color="#c0392b", alpha=0.45))
        reach = th.radius + scenario.uav_size + scenario.danger_margin
        ax.add_patch(Circle((th.x, th.y), reach, fill=False, color="#c0392b", linestyle="--", linewidth=0.8))
    for z in scenario.no_fly_zones:
        ax.add_patch(Rectangle((z.x_min, z.y_min), z.x_max - z.x_min, z.y_max - z.y_min, color="#34495e", alpha=0.55))
    for r in results:
        colour = _COLOURS.get(r.optimizer, "k")
        p = r.flight.points
        ax.plot(p[:, 0], p[:, 1], color=colour, linewidth=2.2, label=run_label(r))
        ax.plot(r.waypoints[:, 0], r.waypoints[:, 1], "o", color=colour, markersize=4)
    ax.plot(*scenario.start[:2], "k^", markersize=10, label="start")
    ax.plot(*scenario.goal[:2], "k*", markersize=13, label="goal")
    b = scenario.bounds
    ax.set_xlim(b.x_min, b.x_max)
    ax.set_ylim(b.y_min, b.y_max)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(title or f"{scenario.name}: top view")
    ax.legend(loc="best", fontsize=8)
    return _png(fig)


def fitness_chart(results: Sequence[PlanResult], title: str = "Best cost per iteration") -> bytes:
    """Best cost so far against iteration for one or several optimizers (log scale when penalties show)."""
    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    top = 0.0
    for r in results:
        curve = np.asarray(r.curve, dtype=np.float64)
        it = np.arange(1, curve.size + 1)
        colour = _COLOURS.get(r.optimizer)
        if curve.size == 1:
            ax.axhline(curve[0], color=colour, linestyle="--", label=run_label(r))
        else:
            ax.plot(it, curve, color=colour, linewidth=2, label=run_label(r))
        top = max(top, float(curve.max()))
    if top >= INFEASIBLE:
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("best cost")
    ax.grid(True, alpha=0.3)
    ax.set_title(title)
    ax.legend()
    return _png(fig)


def render_all(scenario: Scenario, primary: PlanResult, others: Sequence[PlanResult] = ()) -> dict[str, bytes]:
    """The job figures by file name: path_3d.png, top_view.png, fitness.png and, for a comparison,
    fitness_compare.png (every optimizer's curve on one chart; the paths all appear in the top view)."""
    everyone = [primary, *others]
    label = _LABELS.get(primary.optimizer, primary.optimizer)
    figures = {
        "path_3d.png": path_3d(scenario, [primary]),
        "top_view.png": top_view(scenario, everyone),
        "fitness.png": fitness_chart([primary], f"{label}: best cost per iteration"),
    }
    if others:
        names = ", ".join(_LABELS.get(r.optimizer, r.optimizer) for r in everyone)
        figures["fitness_compare.png"] = fitness_chart(everyone, f"Best cost per iteration: {names}")
    return figures
