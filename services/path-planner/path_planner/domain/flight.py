"""The flight path: the best waypoints smoothed and densely checked for threats, no-fly boxes and terrain.

Smoothing happens in (x, y, height above ground), as the SPSO code plots its paths, so the UAV follows
the terrain: x and y are a natural cubic spline over the chord length, the height is a PCHIP
(monotone, no overshoot) so it never leaves the range of the neighbouring waypoints' heights. The dense
path (about one sample per half cell) is then checked: horizontal distance to each threat centre at
least R + s, outside every no-fly box grown by s, inside the map, above the ground, and within the
altitude band between the first and last free waypoints (start and goal may lie outside the band).
If the spline clips something the straight waypoint legs avoid, it is tightened (each leg split into
2, 4, then 8 before fitting, which pulls the curve toward the legs); if it still clips, the polyline is
flown instead (`smoothed` is then False).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline, PchipInterpolator

from path_planner.domain.scenario import Scenario
from path_planner.domain.types import FloatArray

_BAND_TOLERANCE = 1e-6
# Points closer than this share of the map's largest coordinate count as one (far above float rounding).
_COINCIDENT = 1e-9
_TIGHTER = (1, 2, 3)


@dataclass(frozen=True)
class FlightPath:
    """Dense path (x, y, absolute altitude), its height above ground, whether smoothed, and its problems."""

    points: FloatArray
    height_above_ground: FloatArray
    smoothed: bool
    problems: tuple[str, ...]

    @property
    def feasible(self) -> bool:
        """True when no check failed."""
        return not self.problems


def _polyline(scenario: Scenario, waypoints: FloatArray) -> FloatArray:
    """Start, the waypoints and goal, without waypoints that (nearly) coincide with their predecessor or the goal.

    The spline needs a strictly increasing chord, also after its legs are split in eight: a waypoint a few ulps
    from its neighbour gives repeated points there, so anything within a tolerance relative to the map's scale
    is dropped. Start and goal are kept exactly.
    """
    start, goal = scenario.start_array, scenario.goal_array
    inner = np.asarray(waypoints, dtype=np.float64).reshape(-1, 3)
    scale = max(1.0, float(np.max(np.abs(np.vstack([start, inner, goal])))))
    tolerance = _COINCIDENT * scale
    kept = [start]
    for point in inner:
        if min(np.linalg.norm(point - kept[-1]), np.linalg.norm(goal - point)) > tolerance:
            kept.append(point)
    kept.append(goal)
    return np.vstack(kept)


def _chord(pts: FloatArray) -> FloatArray:
    res: FloatArray = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    return res


def _sample_count(scenario: Scenario, length: float) -> int:
    return int(np.clip(np.ceil(length / (0.5 * scenario.terrain.cell_size)), 50, 20_000))


def _subdivide(pts: FloatArray, level: int) -> FloatArray:
    k = 2**level
    t = np.arange(k, dtype=np.float64) / k
    legs = pts[:-1, None, :] + t[None, :, None] * (pts[1:] - pts[:-1])[:, None, :]
    return np.vstack([legs.reshape(-1, 3), pts[-1:]])


def dense_path(
    scenario: Scenario, waypoints: FloatArray, smooth: bool, tightness: int = 0
) -> tuple[FloatArray, FloatArray]:
    """Samples (x, y, height above ground) along the path and their chord parameter in 0..1.

    `tightness` k splits every leg into 2^k before the spline, which pulls the curve closer to the legs.
    """
    corners = _polyline(scenario, waypoints)
    pts = _subdivide(corners, tightness)
    s = _chord(pts)
    t = np.linspace(0.0, s[-1], _sample_count(scenario, float(s[-1])))
    # A single leg is straight either way; splitting a leg of a few ulps could repeat points.
    if smooth and len(corners) >= 3:
        xy = CubicSpline(s, pts[:, :2], bc_type="natural")(t)
        z = PchipInterpolator(s, pts[:, 2])(t)
        out = np.column_stack([xy, z])
    else:
        out = np.column_stack([np.interp(t, s, pts[:, i]) for i in range(3)])
    return out, t / s[-1]


def check_path(
    scenario: Scenario, samples: FloatArray, band_from: float = 0.0, band_to: float = 1.0
) -> tuple[str, ...]:
    """Problems of a dense path (x, y, height above ground); `band_*` bound the chord share held to the band."""
    x = samples[:, 0]
    y = samples[:, 1]
    agl = samples[:, 2]
    problems: list[str] = []
    b = scenario.bounds
    if np.any((x < b.x_min) | (x > b.x_max) | (y < b.y_min) | (y > b.y_max)):
        problems.append("leaves the map bounds")
    for i, th in enumerate(scenario.threats):
        d = np.hypot(x - th.x, y - th.y)
        k = int(np.argmin(d))
        limit = th.radius + scenario.uav_size
        if d[k] < limit:
            problems.append(
                f"clips threat {i} at ({th.x:g}, {th.y:g}): passes {d[k]:.1f} m from its centre, "
                f"collision below {limit:g} m, near ({x[k]:.0f}, {y[k]:.0f})"
            )
    alt = agl + scenario.terrain.height_at(x, y, scenario.sampling)
    s = scenario.uav_size
    for i, z in enumerate(scenario.no_fly_zones):
        inside = (x >= z.x_min - s) & (x <= z.x_max + s) & (y >= z.y_min - s) & (y <= z.y_max + s)
        if np.any(inside & (alt <= z.top + s)):
            problems.append(f"enters no-fly zone {i} ({z.x_min:g}..{z.x_max:g} x {z.y_min:g}..{z.y_max:g})")
    if np.any(agl < 0):
        problems.append(f"goes {float(-agl.min()):.1f} m under the ground")
    n = len(samples)
    lo_i = int(np.floor(band_from * (n - 1)))
    hi_i = int(np.ceil(band_to * (n - 1))) + 1
    inner = agl[lo_i:hi_i]
    if inner.size and (
        inner.min() < scenario.z_min - _BAND_TOLERANCE or inner.max() > scenario.z_max + _BAND_TOLERANCE
    ):
        problems.append(
            f"leaves the altitude band {scenario.z_min:g}..{scenario.z_max:g} m above ground "
            f"(between {float(inner.min()):.1f} and {float(inner.max()):.1f} m)"
        )
    return tuple(problems)


def flight_path(scenario: Scenario, waypoints: FloatArray) -> FlightPath:
    """Smooth the waypoints, check the dense path, tighten or fall back to the polyline if the spline clips."""
    pts = _polyline(scenario, waypoints)
    s = _chord(pts)
    band_from, band_to = (s[1] / s[-1], s[-2] / s[-1]) if len(pts) >= 3 and s[-1] > 0 else (1.0, 0.0)
    samples, _ = dense_path(scenario, waypoints, smooth=True)
    problems = check_path(scenario, samples, band_from, band_to)
    smoothed = True
    for tightness in _TIGHTER:
        if not problems:
            break
        tighter, _ = dense_path(scenario, waypoints, smooth=True, tightness=tightness)
        tighter_problems = check_path(scenario, tighter, band_from, band_to)
        if not tighter_problems:
            samples, problems = tighter, ()
    if problems:
        straight, _ = dense_path(scenario, waypoints, smooth=False)
        straight_problems = check_path(scenario, straight, band_from, band_to)
        if not straight_problems:
            samples, problems, smoothed = straight, (), False
    ground = scenario.terrain.height_at(samples[:, 0], samples[:, 1], scenario.sampling)
    points = np.column_stack([samples[:, :2], samples[:, 2] + ground])
    return FlightPath(points, samples[:, 2].copy(), smoothed, problems)
