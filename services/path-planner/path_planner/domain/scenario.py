"""The planning scenario: terrain heightmap, threats, no-fly boxes, start, goal and the altitude band.

Coordinates follow the SPSO benchmark: x and y are 1-based map coordinates in metres, the heightmap is
indexed `height[row = y / cell - 1, col = x / cell - 1]` (cell = 1 m on the benchmark), and every z the
planner handles is a height above the ground; absolute altitude is that height plus the terrain under it.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from path_planner.domain.errors import ScenarioError, TerrainError
from path_planner.domain.types import FloatArray

Sampling = Literal["nearest", "bilinear"]


@dataclass(frozen=True)
class Terrain:
    """A heightmap: `height[row, col]` is the ground altitude at x = (col + 1)·cell, y = (row + 1)·cell."""

    height: FloatArray
    cell_size: float = 1.0

    def __post_init__(self) -> None:
        h = np.asarray(self.height, dtype=np.float64)
        if h.ndim != 2 or h.shape[0] < 2 or h.shape[1] < 2:
            raise TerrainError("scenario.terrain", f"heightmap must be a 2-D array of at least 2x2, got {h.shape}")
        if not np.all(np.isfinite(h)):
            raise TerrainError("scenario.terrain", "heightmap contains NaN or infinite values")
        if not self.cell_size > 0:
            raise TerrainError("scenario.terrain.cell_size", f"must be positive, got {self.cell_size}")
        object.__setattr__(self, "height", np.ascontiguousarray(h))

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 of the heights and cell size: two terrains with the same fingerprint are the same map."""
        digest = hashlib.sha256(np.float64(self.cell_size).tobytes())
        digest.update(np.asarray(self.height.shape, dtype=np.int64).tobytes())
        digest.update(self.height.tobytes())
        return digest.hexdigest()

    @property
    def x_extent(self) -> tuple[float, float]:
        """The x range covered by cell centres."""
        return (self.cell_size, self.height.shape[1] * self.cell_size)

    @property
    def y_extent(self) -> tuple[float, float]:
        """The y range covered by cell centres."""
        return (self.cell_size, self.height.shape[0] * self.cell_size)

    def height_at(self, x: FloatArray, y: FloatArray, sampling: Sampling = "nearest") -> FloatArray:
        """Ground altitude under (x, y), any shape; nearest cell (the SPSO code's rounding) or bilinear."""
        rows, cols = self.height.shape
        if sampling == "nearest":
            # floor(v + 0.5) is MATLAB's round for the non-negative indices used here (numpy rounds half to even);
            # after clipping to 0.., truncation is that floor. One flat index and in-place steps, as this runs
            # for every evaluation.
            gx = np.array(x, dtype=np.float64)
            gx /= self.cell_size
            gx -= 0.5
            np.clip(gx, 0, cols - 1, out=gx)
            gy = np.array(y, dtype=np.float64)
            gy /= self.cell_size
            gy -= 0.5
            np.clip(gy, 0, rows - 1, out=gy)
            r = gy.astype(np.intp)
            r *= cols
            r += gx.astype(np.intp)
            out: FloatArray = self.height.ravel().take(r)
            return out
        fx = np.asarray(x, dtype=np.float64) / self.cell_size - 1.0
        fy = np.asarray(y, dtype=np.float64) / self.cell_size - 1.0
        fx = np.clip(fx, 0.0, cols - 1.0)
        fy = np.clip(fy, 0.0, rows - 1.0)
        c0 = np.minimum(np.floor(fx).astype(np.intp), cols - 2)
        r0 = np.minimum(np.floor(fy).astype(np.intp), rows - 2)
        tx = fx - c0
        ty = fy - r0
        h = self.height
        top = h[r0, c0] * (1.0 - tx) + h[r0, c0 + 1] * tx
        bottom = h[r0 + 1, c0] * (1.0 - tx) + h[r0 + 1, c0 + 1] * tx
        res: FloatArray = top * (1.0 - ty) + bottom * ty
        return res


@dataclass(frozen=True)
class GaussianPeak:
    """One analytic hill: height·exp(−((x−x0)/sx)²/2 − ((y−y0)/sy)²/2)."""

    x: float
    y: float
    height: float
    sigma_x: float
    sigma_y: float


def gaussian_terrain(
    width: int, depth: int, peaks: Sequence[GaussianPeak], base: float = 0.0, cell_size: float = 1.0
) -> Terrain:
    """Rasterise analytic Gaussian peaks onto a `depth` x `width` heightmap."""
    if width < 2 or depth < 2:
        raise TerrainError("scenario.terrain.size", f"must be at least 2x2 cells, got {width}x{depth}")
    for i, p in enumerate(peaks):
        if not (p.sigma_x > 0 and p.sigma_y > 0):
            raise TerrainError(f"scenario.terrain.peaks[{i}]", "sigma_x and sigma_y must be positive")
    xs = np.arange(1, width + 1, dtype=np.float64) * cell_size
    ys = np.arange(1, depth + 1, dtype=np.float64) * cell_size
    h = np.full((depth, width), float(base))
    if peaks:
        # Each hill is separable, exp(-u²/2 - v²/2) = exp(-u²/2)·exp(-v²/2), so the sum over hills is one
        # matrix product of (rows x hills) by (hills x columns) instead of a full-grid pass per hill.
        hills = np.array([[q.x, q.y, q.height, q.sigma_x, q.sigma_y] for q in peaks], dtype=np.float64)
        along_x = np.exp(-0.5 * ((xs[None, :] - hills[:, 0:1]) / hills[:, 3:4]) ** 2)
        along_y = np.exp(-0.5 * ((ys[None, :] - hills[:, 1:2]) / hills[:, 4:5]) ** 2)
        h += (along_y.T * hills[:, 2]) @ along_x
    return Terrain(h, cell_size)


@dataclass(frozen=True)
class Threat:
    """A vertical cylinder of infinite height; only the horizontal distance to its centre matters."""

    x: float
    y: float
    radius: float


@dataclass(frozen=True)
class NoFlyZone:
    """An axis-aligned box from the ground up to absolute altitude `top` (inf: unbounded)."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float
    top: float = float("inf")


@dataclass(frozen=True)
class Bounds:
    """The rectangle the path must stay in."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float

    def contains(self, x: float, y: float) -> bool:
        """Whether (x, y) lies inside, edges included."""
        return self.x_min <= x <= self.x_max and self.y_min <= y <= self.y_max


@dataclass(frozen=True)
class Scenario:
    """Everything the cost and the encodings need; construction validates it and names the bad field."""

    terrain: Terrain
    bounds: Bounds
    start: tuple[float, float, float]
    goal: tuple[float, float, float]
    z_min: float = 100.0
    z_max: float = 200.0
    n_waypoints: int = 10
    threats: tuple[Threat, ...] = ()
    no_fly_zones: tuple[NoFlyZone, ...] = ()
    uav_size: float = 1.0
    danger_margin: float = 10.0
    sampling: Sampling = "nearest"
    name: str = "scenario"
    threat_array: FloatArray = field(init=False, repr=False, compare=False)
    zone_array: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._validate()
        t = np.array([[th.x, th.y, th.radius] for th in self.threats], dtype=np.float64).reshape(-1, 3)
        z = np.array(
            [[b.x_min, b.x_max, b.y_min, b.y_max, b.top] for b in self.no_fly_zones], dtype=np.float64
        ).reshape(-1, 5)
        object.__setattr__(self, "threat_array", t)
        object.__setattr__(self, "zone_array", z)

    @property
    def start_array(self) -> FloatArray:
        """Start as (x, y, height above ground)."""
        return np.array(self.start, dtype=np.float64)

    @property
    def goal_array(self) -> FloatArray:
        """Goal as (x, y, height above ground)."""
        return np.array(self.goal, dtype=np.float64)

    def _validate(self) -> None:
        self._validate_map()
        self._validate_limits()
        for name, point in (("start", self.start), ("goal", self.goal)):
            self._validate_endpoint(name, point)
        if np.hypot(self.goal[0] - self.start[0], self.goal[1] - self.start[1]) == 0:
            raise ScenarioError("scenario.goal", "goal coincides with start")

    def _validate_map(self) -> None:
        """The bounds are a rectangle the terrain covers."""
        b = self.bounds
        if not (b.x_min < b.x_max and b.y_min < b.y_max):
            raise ScenarioError("scenario.bounds", f"empty rectangle {b}")
        tx0, tx1 = self.terrain.x_extent
        ty0, ty1 = self.terrain.y_extent
        if b.x_min < tx0 or b.x_max > tx1 or b.y_min < ty0 or b.y_max > ty1:
            raise ScenarioError(
                "scenario.bounds",
                f"{b} exceeds the terrain, which covers x {tx0:g}..{tx1:g}, y {ty0:g}..{ty1:g}",
            )

    def _validate_limits(self) -> None:
        """Altitudes, waypoint count, sizes, threats and no-fly zones each make sense on their own."""
        if not (0 <= self.z_min < self.z_max):
            raise ScenarioError("scenario.altitude", f"need 0 <= min < max, got {self.z_min}..{self.z_max}")
        if self.n_waypoints < 1:
            raise ScenarioError("scenario.waypoints", f"must be at least 1, got {self.n_waypoints}")
        if self.uav_size < 0 or self.danger_margin < 0:
            raise ScenarioError("scenario.uav_size", "uav_size and danger_margin must be non-negative")
        for i, th in enumerate(self.threats):
            if not th.radius > 0:
                raise ScenarioError(f"scenario.threats[{i}].radius", f"must be positive, got {th.radius}")
        for i, zone in enumerate(self.no_fly_zones):
            if not (zone.x_min < zone.x_max and zone.y_min < zone.y_max):
                raise ScenarioError(f"scenario.no_fly_zones[{i}]", "x_min < x_max and y_min < y_max required")

    def _validate_endpoint(self, name: str, point: tuple[float, float, float]) -> None:
        """The start or goal is on the map, above the ground, and outside every threat and no-fly zone."""
        b = self.bounds
        x, y, z = point
        if not b.contains(x, y):
            raise ScenarioError(
                f"scenario.{name}",
                f"({x:g}, {y:g}) is outside the map x {b.x_min:g}..{b.x_max:g}, y {b.y_min:g}..{b.y_max:g}",
            )
        if z < 0:
            raise ScenarioError(f"scenario.{name}", f"height above ground must be >= 0, got {z:g}")
        for i, th in enumerate(self.threats):
            if float(np.hypot(x - th.x, y - th.y)) < th.radius + self.uav_size:
                raise ScenarioError(
                    f"scenario.{name}",
                    f"({x:g}, {y:g}) is inside threat {i} (centre ({th.x:g}, {th.y:g}), radius {th.radius:g})",
                )
        ground = float(self.terrain.height_at(np.array(x), np.array(y), self.sampling))
        s = self.uav_size
        for i, zone in enumerate(self.no_fly_zones):
            inside = zone.x_min - s <= x <= zone.x_max + s and zone.y_min - s <= y <= zone.y_max + s
            if inside and ground + z <= zone.top + s:
                raise ScenarioError(f"scenario.{name}", f"({x:g}, {y:g}) is inside no-fly zone {i}")
