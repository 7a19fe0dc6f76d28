"""Seeded scenarios the planner was never tuned on: terrain of a given kind, threats, start and goal.

Terrain kinds: `peaks` (Gaussian hills), `ridges` (ridges and valleys: ridged sinusoids at random
headings), `urban` (a grid of flat-roofed blocks between streets) and any given heightmap (a real
elevation model). Start and goal lie at a random heading and distance (at least half the map's shorter
side apart); 4 to 12 threat cylinders are placed at random, never on the start or goal. A feasible
corridor is checked, not assumed: the grid A* path must exist and its flown path (flight.py: threats,
ground, map) must pass every check; otherwise the threats are drawn again (a bounded number of times).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from path_planner.domain.errors import ScenarioError
from path_planner.domain.flight import flight_path
from path_planner.domain.optimizers.astar import astar_plan
from path_planner.domain.scenario import Bounds, GaussianPeak, Scenario, Terrain, Threat, gaussian_terrain
from path_planner.domain.types import FloatArray

TERRAIN_KINDS = ("peaks", "ridges", "urban")
THREATS = (4, 12)
_ATTEMPTS = 40


@dataclass(frozen=True)
class GeneratorSettings:
    """Map size in cells and metres per cell, the altitude band, waypoints and the UAV's size and margin."""

    cells: int = 200
    cell_size: float = 5.0
    z_min: float = 60.0
    z_max: float = 160.0
    waypoints: int = 10
    uav_size: float = 1.0
    danger_margin: float = 10.0


def random_peaks(rng: np.random.Generator, cells: int, cell_size: float) -> tuple[list[GaussianPeak], float]:
    """5 to 12 Gaussian hills, 40 to 300 m high, and the base height: what `peaks_terrain` draws, as parameters."""
    side = cells * cell_size
    peaks = []
    for _ in range(int(rng.integers(5, 13))):
        x, y = rng.uniform(0, side, 2)
        sx, sy = rng.uniform(0.05, 0.2, 2) * side
        peaks.append(GaussianPeak(float(x), float(y), float(rng.uniform(40, 300)), float(sx), float(sy)))
    return peaks, float(rng.uniform(0, 50))


def peaks_terrain(rng: np.random.Generator, cells: int, cell_size: float) -> Terrain:
    """5 to 12 Gaussian hills, 40 to 300 m high."""
    peaks, base = random_peaks(rng, cells, cell_size)
    return gaussian_terrain(cells, cells, peaks, base=base, cell_size=cell_size)


def ridges_terrain(rng: np.random.Generator, cells: int, cell_size: float) -> Terrain:
    """Ridges and valleys: three ridged sinusoids (1 − |sin|) at random headings and wavelengths."""
    xs = np.arange(1, cells + 1) * cell_size
    gx, gy = np.meshgrid(xs, xs)
    h = np.zeros_like(gx)
    for _ in range(3):
        heading = rng.uniform(0, math.pi)
        wavelength = rng.uniform(0.2, 0.6) * cells * cell_size
        along = (gx * math.cos(heading) + gy * math.sin(heading)) * math.pi / wavelength
        h += rng.uniform(40, 120) * (1.0 - np.abs(np.sin(along + rng.uniform(0, math.pi))))
    return Terrain(h, cell_size)


def urban_terrain(rng: np.random.Generator, cells: int, cell_size: float) -> Terrain:
    """Blocks of 8 to 16 cells with 3-cell streets between them, each block 0 (a park) to 80 m tall."""
    block = int(rng.integers(8, 17))
    pitch = block + 3
    idx = np.arange(cells)
    on_block = (idx % pitch) < block
    blocks = cells // pitch + 1
    heights = rng.uniform(10, 80, (blocks, blocks)) * (rng.random((blocks, blocks)) > 0.15)
    h = heights[idx[:, None] // pitch, idx[None, :] // pitch] * (on_block[:, None] & on_block[None, :])
    return Terrain(h, cell_size)


def make_terrain(kind: str, rng: np.random.Generator, settings: GeneratorSettings) -> Terrain:
    """A terrain of one of TERRAIN_KINDS."""
    makers = {"peaks": peaks_terrain, "ridges": ridges_terrain, "urban": urban_terrain}
    if kind not in makers:
        raise ScenarioError("scenario.terrain.kind", f"unknown terrain kind {kind!r}; one of {TERRAIN_KINDS}")
    return makers[kind](rng, settings.cells, settings.cell_size)


def _endpoints(rng: np.random.Generator, bounds: Bounds) -> tuple[FloatArray, FloatArray]:
    """Start and goal at a random heading, at least half the shorter side apart, both on the map."""
    lo = np.array([bounds.x_min, bounds.y_min])
    hi = np.array([bounds.x_max, bounds.y_max])
    short = float(np.min(hi - lo))
    margin = 0.05 * short
    for _ in range(_ATTEMPTS * 10):
        start = rng.uniform(lo + margin, hi - margin)
        heading = rng.uniform(0, 2 * math.pi)
        goal = start + rng.uniform(0.5, 1.2) * short * np.array([math.cos(heading), math.sin(heading)])
        if np.all(goal >= lo + margin) and np.all(goal <= hi - margin):
            return start, goal
    raise ScenarioError("scenario.bounds", "no start and goal fit on the map")


def _threats(
    rng: np.random.Generator, bounds: Bounds, start: FloatArray, goal: FloatArray, settings: GeneratorSettings
) -> tuple[Threat, ...]:
    """4 to 12 cylinders of radius 4 to 10 % of the shorter side, clear of start and goal by their danger margin."""
    short = min(bounds.x_max - bounds.x_min, bounds.y_max - bounds.y_min)
    out: list[Threat] = []
    wanted = int(rng.integers(THREATS[0], THREATS[1] + 1))
    while len(out) < wanted:
        x, y = rng.uniform(bounds.x_min, bounds.x_max), rng.uniform(bounds.y_min, bounds.y_max)
        radius = float(rng.uniform(0.04, 0.10) * short)
        reach = radius + settings.uav_size + settings.danger_margin
        if min(math.dist((x, y), start), math.dist((x, y), goal)) > reach:
            out.append(Threat(float(x), float(y), radius))
    return tuple(out)


def has_corridor(scenario: Scenario) -> bool:
    """Whether the grid A* finds a path whose flown path passes every check: a feasible corridor exists."""
    grid = astar_plan(scenario)
    return grid.found and flight_path(scenario, grid.waypoints).feasible


def generate(
    seed: int, kind: str, settings: GeneratorSettings | None = None, terrain: Terrain | None = None
) -> Scenario:
    """The scenario of `seed` on terrain of `kind` (or on `terrain`, e.g. a real elevation model), corridor checked."""
    cfg = settings or GeneratorSettings()
    rng = np.random.default_rng(seed)
    ground = terrain if terrain is not None else make_terrain(kind, rng, cfg)
    x1, y1 = ground.x_extent[1], ground.y_extent[1]
    bounds = Bounds(ground.cell_size, x1, ground.cell_size, y1)
    start, goal = _endpoints(rng, bounds)
    mid = 0.5 * (cfg.z_min + cfg.z_max)
    for _ in range(_ATTEMPTS):
        scenario = Scenario(
            terrain=ground,
            bounds=bounds,
            start=(float(start[0]), float(start[1]), mid),
            goal=(float(goal[0]), float(goal[1]), mid),
            z_min=cfg.z_min,
            z_max=cfg.z_max,
            n_waypoints=cfg.waypoints,
            threats=_threats(rng, bounds, start, goal, cfg),
            uav_size=cfg.uav_size,
            danger_margin=cfg.danger_margin,
            name=f"{kind}-{seed}",
        )
        if has_corridor(scenario):
            return scenario
    raise ScenarioError("scenario.threats", f"no threat layout with a feasible corridor in {_ATTEMPTS} draws")
