"""The flight path: the best waypoints smoothed and densely checked for threats, no-fly boxes and terrain.

The flight model: waypoints are given as heights above the ground, but the UAV flies between them in
absolute altitude, as the cost's length (J1) and no-fly boxes measure the legs; it does not follow the
terrain. Each waypoint's absolute altitude is its height plus the ground under it; between waypoints x and
y are a natural cubic spline over the 3-D chord length and the absolute altitude a PCHIP (monotone, no
overshoot), so the altitude never leaves the range of the neighbouring waypoints'. The polyline fallback
flies straight legs in absolute altitude, exactly the legs the cost measures. The dense path (samples at
most a quarter cell apart along the chord) is then checked: horizontal distance to each threat centre at
least R + s, outside every no-fly box grown by s, inside the map, and at or above the ground under every
sample (the paper's cost checks the waypoints only, so a straight leg over a steep ridge can pass below
it). The free waypoints must lie in the altitude band; between them the height above ground follows the
terrain under a path flown in absolute altitude, so only its minimum, the clearance, is held (>= 0) and
reported. If the spline clips something the straight legs avoid, it is tightened (each leg split into 2,
4, then 8 before fitting, which pulls the curve toward the legs); if it still clips, the polyline is flown
instead (`smoothed` is then False).
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
# Samples per cell along the chord: a leg crossing a cell for more than a quarter of it is sampled there.
_SAMPLES_PER_CELL = 4
_MAX_SAMPLES = 40_000


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

    @property
    def min_clearance(self) -> float:
        """The least height above ground along the flown path (negative: it goes under the ground)."""
        return float(self.height_above_ground.min())


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


def _ground(scenario: Scenario, points: FloatArray) -> FloatArray:
    return scenario.terrain.height_at(points[:, 0], points[:, 1], scenario.sampling)


def _absolute(scenario: Scenario, points: FloatArray) -> FloatArray:
    """(x, y, height above ground) -> (x, y, absolute altitude)."""
    return np.column_stack([points[:, :2], points[:, 2] + _ground(scenario, points)])


def _chord(pts: FloatArray) -> FloatArray:
    res: FloatArray = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    return res


def _sample_count(scenario: Scenario, length: float) -> int:
    per = _SAMPLES_PER_CELL / scenario.terrain.cell_size
    return int(np.clip(np.ceil(length * per), 50, _MAX_SAMPLES))


def _subdivide(pts: FloatArray, level: int) -> FloatArray:
    k = 2**level
    t = np.arange(k, dtype=np.float64) / k
    legs = pts[:-1, None, :] + t[None, :, None] * (pts[1:] - pts[:-1])[:, None, :]
    return np.vstack([legs.reshape(-1, 3), pts[-1:]])


def dense_path(
    scenario: Scenario, waypoints: FloatArray, smooth: bool, tightness: int = 0
) -> tuple[FloatArray, FloatArray]:
    """Samples (x, y, absolute altitude) along the flown path and their chord parameter in 0..1.

    `tightness` k splits every leg into 2^k before the spline, which pulls the curve closer to the legs.
    """
    corners = _absolute(scenario, _polyline(scenario, waypoints))
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


def _threat_problems(scenario: Scenario, x: FloatArray, y: FloatArray) -> list[str]:
    problems: list[str] = []
    for i, th in enumerate(scenario.threats):
        d = np.hypot(x - th.x, y - th.y)
        k = int(np.argmin(d))
        limit = th.radius + scenario.uav_size
        if d[k] < limit:
            problems.append(
                f"clips threat {i} at ({th.x:g}, {th.y:g}): passes {d[k]:.1f} m from its centre, "
                f"collision below {limit:g} m, near ({x[k]:.0f}, {y[k]:.0f})"
            )
    return problems


def check_path(scenario: Scenario, samples: FloatArray) -> tuple[str, ...]:
    """Problems of a dense path (x, y, absolute altitude): bounds, threats, no-fly boxes, the ground."""
    x = samples[:, 0]
    y = samples[:, 1]
    alt = samples[:, 2]
    problems: list[str] = []
    b = scenario.bounds
    if np.any((x < b.x_min) | (x > b.x_max) | (y < b.y_min) | (y > b.y_max)):
        problems.append("leaves the map bounds")
    problems += _threat_problems(scenario, x, y)
    s = scenario.uav_size
    for i, z in enumerate(scenario.no_fly_zones):
        inside = (x >= z.x_min - s) & (x <= z.x_max + s) & (y >= z.y_min - s) & (y <= z.y_max + s)
        if np.any(inside & (alt <= z.top + s)):
            problems.append(f"enters no-fly zone {i} ({z.x_min:g}..{z.x_max:g} x {z.y_min:g}..{z.y_max:g})")
    clearance = alt - _ground(scenario, samples)
    if np.any(clearance < 0):
        k = int(np.argmin(clearance))
        problems.append(f"goes {float(-clearance[k]):.1f} m under the ground near ({x[k]:.0f}, {y[k]:.0f})")
    return tuple(problems)


def band_problems(scenario: Scenario, waypoints: FloatArray) -> tuple[str, ...]:
    """The free waypoints' heights above ground outside the altitude band, if any."""
    agl = np.asarray(waypoints, dtype=np.float64).reshape(-1, 3)[:, 2]
    if agl.size and (agl.min() < scenario.z_min - _BAND_TOLERANCE or agl.max() > scenario.z_max + _BAND_TOLERANCE):
        return (
            f"a waypoint leaves the altitude band {scenario.z_min:g}..{scenario.z_max:g} m above ground "
            f"(between {float(agl.min()):.1f} and {float(agl.max()):.1f} m)",
        )
    return ()


def flight_path(scenario: Scenario, waypoints: FloatArray) -> FlightPath:
    """Smooth the waypoints, check the dense path, tighten or fall back to the polyline if the spline clips."""
    samples, _ = dense_path(scenario, waypoints, smooth=True)
    problems = check_path(scenario, samples)
    smoothed = True
    for tightness in _TIGHTER:
        if not problems:
            break
        tighter, _ = dense_path(scenario, waypoints, smooth=True, tightness=tightness)
        if not check_path(scenario, tighter):
            samples, problems = tighter, ()
    if problems:
        straight, _ = dense_path(scenario, waypoints, smooth=False)
        straight_problems = check_path(scenario, straight)
        if not straight_problems:
            samples, problems, smoothed = straight, (), False
    height = samples[:, 2] - _ground(scenario, samples)
    return FlightPath(samples, height, smoothed, band_problems(scenario, waypoints) + problems)
