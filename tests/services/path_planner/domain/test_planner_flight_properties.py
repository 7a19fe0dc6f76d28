"""The smoother accepts any waypoints an optimizer can return, coincident and near-coincident ones included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from path_planner.domain.encoding import make_encoding
from path_planner.domain.flight import dense_path, flight_path
from path_planner.domain.optimizers import Budget
from path_planner.domain.planner import OPTIMIZER_NAMES, PlannerConfig
from path_planner.domain.scenario import Bounds, GaussianPeak, Scenario, Threat, gaussian_terrain
from path_planner.domain.types import FloatArray


def _generated() -> Scenario:
    """The reported job's kind of scenario: 300 x 700 Gaussian terrain, 4 threats, heading north-north-west."""
    terrain = gaussian_terrain(
        300, 700, [GaussianPeak(90, 300, 80, 30, 40), GaussianPeak(220, 520, 60, 25, 25)], base=5.0
    )
    return Scenario(
        terrain=terrain,
        bounds=Bounds(1, 300, 1, 700),
        start=(250.0, 40.0, 30.0),
        goal=(150.0, 650.0, 30.0),
        z_min=20.0,
        z_max=80.0,
        n_waypoints=5,
        threats=(Threat(60, 150, 20), Threat(280, 300, 15), Threat(40, 480, 25), Threat(270, 600, 15)),
        uav_size=1.0,
    )


SCENARIO = _generated()
# A few ulps up to well beyond the tolerance: what the spherical decoding leaves after a step of r ~ 0.
OFFSETS = st.sampled_from([0.0, 3e-14, 1e-12, 1e-9, 1e-7, 1e-3])


def _near(base: FloatArray, offset: float, direction: int) -> FloatArray:
    point = np.array(base, dtype=np.float64)
    point[direction] += offset
    return point


@st.composite
def optimizer_waypoints(draw: st.DrawFn, optimizer: str) -> FloatArray:
    """(n, 3) waypoints shaped as `optimizer` returns them, drawn from a small pool so that repeats are common."""
    n = SCENARIO.n_waypoints
    encoding = PlannerConfig(optimizer, Budget(2, 1)).resolved_encoding
    if encoding == "spherical":
        enc = make_encoding("spherical", SCENARIO)
        # Steps of length 0 or a few ulps put a waypoint on (or next to) its predecessor, the start first.
        steps = st.sampled_from([0.0, 3e-14, 1e-12, 1.0, 50.0, float(enc.upper[0])])
        radii = draw(st.lists(steps, min_size=n, max_size=n))
        angles = draw(st.lists(st.floats(0.0, 1.0), min_size=2 * n, max_size=2 * n))
        vector = np.concatenate([radii, enc.lower[n:] + np.array(angles) * (enc.upper[n:] - enc.lower[n:])])
        return enc.decode(vector[None])[0]
    lo = np.array([SCENARIO.bounds.x_min, SCENARIO.bounds.y_min, SCENARIO.z_min])
    hi = np.array([SCENARIO.bounds.x_max, SCENARIO.bounds.y_max, SCENARIO.z_max])
    free = [lo + np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3))) * (hi - lo) for _ in range(2)]
    anchors = [SCENARIO.start_array, SCENARIO.goal_array, *free]
    picks = draw(st.lists(st.tuples(st.integers(0, 3), OFFSETS, st.integers(0, 2)), min_size=n, max_size=n))
    waypoints = np.array([_near(anchors[a], offset, axis) for a, offset, axis in picks])
    if optimizer == "astar":
        waypoints[:, 2] = (SCENARIO.z_min + SCENARIO.z_max) / 2  # A* flies its corners at mid-band
    return waypoints


def _check_flown(waypoints: FloatArray) -> None:
    flight = flight_path(SCENARIO, waypoints)
    assert np.all(np.isfinite(flight.points))
    np.testing.assert_array_equal(flight.points[0, :2], SCENARIO.start_array[:2])
    np.testing.assert_allclose(flight.points[-1, :2], SCENARIO.goal_array[:2], atol=1e-6)
    for tightness in range(4):
        for smooth in (True, False):
            samples, t = dense_path(SCENARIO, waypoints, smooth=smooth, tightness=tightness)
            assert np.all(np.isfinite(samples))
            assert t[0] == 0.0 and t[-1] == pytest.approx(1.0)
            assert np.all(np.diff(t) > 0)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", OPTIMIZER_NAMES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_smoother_accepts_every_optimizers_waypoints(optimizer: str, data: st.DataObject) -> None:
    _check_flown(data.draw(optimizer_waypoints(optimizer)))


def test_reported_job_first_waypoint_3e14_from_start_is_flown() -> None:
    """The failed job's shape: a feasible path whose first waypoint lies 3e-14 m from the start."""
    heading = SCENARIO.goal_array - SCENARIO.start_array
    legs = [SCENARIO.start_array + heading * k / 6 for k in range(2, 6)]
    first = SCENARIO.start_array + 3e-14 * heading / np.linalg.norm(heading)
    waypoints = np.array([first, *legs])
    waypoints[1:, 2] = 40.0
    flight = flight_path(SCENARIO, waypoints)
    assert flight.feasible, flight.problems
    np.testing.assert_array_equal(flight.points[0, :2], SCENARIO.start_array[:2])
