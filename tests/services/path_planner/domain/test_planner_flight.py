"""The flown path: smoothing, dense checks that catch clipped cylinders, fallbacks and best-effort results."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from path_planner.domain.cost import PathCost
from path_planner.domain.errors import PlanningError, ScenarioError
from path_planner.domain.flight import band_problems, check_path, dense_path, flight_path
from path_planner.domain.optimizers import Budget
from path_planner.domain.optimizers.astar import astar_plan
from path_planner.domain.planner import PlannerConfig, plan
from path_planner.domain.scenario import Bounds, GaussianPeak, NoFlyZone, Scenario, Terrain, Threat, gaussian_terrain


def test_check_catches_a_path_clipping_a_cylinder(flat: Any) -> None:
    sc = flat(threats=(Threat(30, 50, 10),))
    clear = np.column_stack([np.full(50, 18.5), np.linspace(10, 90, 50), np.full(50, 150.0)])
    assert check_path(sc, clear) == ()
    clipping = clear.copy()
    clipping[:, 0] = 19.5  # 10.5 m from the centre, under R + s = 11
    problems = check_path(sc, clipping)
    assert len(problems) == 1
    assert "clips threat 0" in problems[0]


def test_check_reports_ground_box_and_bounds(flat: Any) -> None:
    sc = flat(no_fly_zones=(NoFlyZone(40, 60, 40, 60, top=500),))
    pts = np.array([[50.0, 50.0, 150.0], [120.0, 50.0, 90.0], [60.0, 70.0, -3.0]])
    text = " | ".join(check_path(sc, pts))
    assert "no-fly zone 0" in text
    assert "map bounds" in text
    assert "3.0 m under the ground near (60, 70)" in text


def test_band_holds_the_waypoints(flat: Any) -> None:
    sc = flat()
    assert band_problems(sc, np.array([[10.0, 50.0, 100.0], [10.0, 60.0, 200.0]])) == ()
    (problem,) = band_problems(sc, np.array([[10.0, 50.0, 99.0], [10.0, 60.0, 150.0]]))
    assert "altitude band 100..200" in problem


def test_spline_passes_through_waypoints_in_absolute_altitude(peaks_scenario: Scenario) -> None:
    wp = np.array([[40, 30, 20], [70, 90, 60], [120, 110, 20], [150, 150, 60], [170, 160, 30.0]])
    samples, t = dense_path(peaks_scenario, wp, smooth=True)
    assert t[0] == 0 and t[-1] == pytest.approx(1)
    absolute = wp + np.column_stack([np.zeros((5, 2)), peaks_scenario.terrain.height_at(wp[:, 0], wp[:, 1])])
    for p in absolute:
        assert np.min(np.linalg.norm(samples - p, axis=1)) < 1.0
    corners = np.vstack([absolute, [peaks_scenario.start_array], [peaks_scenario.goal_array]])
    # PCHIP does not overshoot: the altitude stays within the corners' absolute altitudes.
    assert corners[:, 2].min() - 1e-9 <= samples[:, 2].min()
    assert samples[:, 2].max() <= corners[:, 2].max() + 1e-9


def ridge() -> Scenario:
    """Flat ground cut by a 300 m ridge, 4 m wide (sigma), across the start-goal line at x = 150."""
    terrain = gaussian_terrain(300, 100, [GaussianPeak(150, 50, 300, 4, 10_000)])
    return Scenario(
        terrain=terrain,
        bounds=Bounds(1, 300, 1, 100),
        start=(20.0, 50.0, 50.0),
        goal=(280.0, 50.0, 50.0),
        z_min=30.0,
        z_max=80.0,
        n_waypoints=2,
    )


def test_straight_leg_through_a_steep_ridge_is_infeasible() -> None:
    """Both waypoints sit 50 m above flat ground; the leg between them, flown in absolute altitude, meets the
    ridge 250 m below its crest. Checking the waypoints (the paper's cost) or a terrain-following path misses it."""
    sc = ridge()
    waypoints = np.array([[100.0, 50.0, 50.0], [200.0, 50.0, 50.0]])
    assert PathCost(sc, leg_samples=0).evaluate(waypoints[None]).feasible[0]
    held = PathCost(sc).evaluate(waypoints[None])
    assert not held.feasible[0] and held.under_ground[0] == 1
    assert held.altitude[0] > 1e6 + 20.0  # infinite plus the depth of the deepest of the 8 samples on the leg
    fp = flight_path(sc, waypoints)
    assert not fp.feasible
    assert any("under the ground near (150, 50)" in p for p in fp.problems), fp.problems
    assert fp.min_clearance == pytest.approx(50.0 - 300.0, abs=1.0)
    # the flown path really is in absolute altitude: 50 m over the flat ground, the ridge's full height under it
    assert fp.points[:, 2].max() == pytest.approx(50.0, abs=1e-6)
    # the ridge spans the map, so no plan clears it, and none is called feasible
    r = plan(sc, PlannerConfig("iboa", Budget(20, 10)), seed=0)
    assert not r.feasible
    assert r.flight.min_clearance < 0


def test_flight_of_colliding_waypoints_is_infeasible_with_reasons(flat: Any) -> None:
    sc = flat(threats=(Threat(30, 50, 10),))
    fp = flight_path(sc, np.array([[25.0, 50.0, 150.0]]))
    assert not fp.feasible
    assert any("threat 0" in p for p in fp.problems)
    assert fp.points.shape[1] == 3


def test_feasible_plan_on_peaks(peaks_scenario: Scenario) -> None:
    r = plan(peaks_scenario, PlannerConfig("iboa", Budget(40, 40)), seed=0)
    assert r.feasible, r.problems
    assert r.waypoints.shape == (5, 3)
    # the flown path carries absolute altitude: height above ground plus terrain
    ground = peaks_scenario.terrain.height_at(r.flight.points[:, 0], r.flight.points[:, 1])
    np.testing.assert_allclose(r.flight.points[:, 2] - ground, r.flight.height_above_ground)


def walled() -> Scenario:
    wall = tuple(Threat(x, 50, 9) for x in range(0, 101, 10))
    return Scenario(
        terrain=Terrain(np.zeros((100, 100))),
        bounds=Bounds(1, 100, 1, 100),
        start=(50.0, 10.0, 150.0),
        goal=(50.0, 90.0, 150.0),
        n_waypoints=3,
        threats=wall,
    )


@pytest.mark.parametrize("name", ["iboa", "boa", "spso", "pso", "astar"])
def test_no_feasible_path_gives_best_effort_infeasible_result(name: str) -> None:
    r = plan(walled(), PlannerConfig(name, Budget(10, 5)), seed=0)
    assert not r.feasible
    assert r.problems
    assert np.isfinite(r.best_cost)
    assert r.flight.points.shape[0] > 2


@pytest.mark.slow
def test_astar_avoids_threats_and_boxes(peaks_scenario: Scenario) -> None:
    g = astar_plan(peaks_scenario)
    assert g.found
    r = plan(peaks_scenario, PlannerConfig("astar", Budget(2, 1)))
    assert r.feasible, r.problems
    assert r.evaluations == 1
    assert r.cost["threat"] == 0.0


def test_astar_reports_no_path() -> None:
    g = astar_plan(walled())
    assert not g.found
    assert g.waypoints.shape == (3, 3)


def test_start_inside_threat_is_rejected(flat: Any) -> None:
    with pytest.raises(ScenarioError) as err:
        flat(threats=(Threat(12, 12, 5),))
    assert err.value.field == "scenario.start"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"goal": (10.0, 150.0, 150.0)}, "scenario.goal"),
        ({"start": (0.0, 10.0, 150.0)}, "scenario.start"),
        ({"bounds": Bounds(1, 200, 1, 100)}, "scenario.bounds"),
        ({"z_min": 200.0, "z_max": 100.0}, "scenario.altitude"),
        ({"n_waypoints": 0}, "scenario.waypoints"),
        ({"no_fly_zones": (NoFlyZone(0, 20, 80, 100),)}, "scenario.goal"),
    ],
)
def test_scenario_errors_name_the_field(flat: Any, overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ScenarioError) as err:
        flat(**overrides)
    assert err.value.field == field


def test_bad_heightmap_is_a_terrain_error() -> None:
    with pytest.raises(PlanningError, match=r"scenario\.terrain"):
        Terrain(np.array([[1.0, np.nan], [0.0, 0.0]]))


def test_spso_encoding_mismatch_is_rejected() -> None:
    with pytest.raises(PlanningError) as err:
        PlannerConfig("spso", Budget(10, 10), "cartesian")
    assert err.value.field == "encoding"


def test_bilinear_sampling() -> None:
    t = Terrain(np.array([[0.0, 10.0], [20.0, 30.0]]))
    assert float(t.height_at(np.array(1.5), np.array(1.5), "bilinear")) == pytest.approx(15.0)
    assert float(t.height_at(np.array(1.6), np.array(1.4), "nearest")) == 10.0  # row 0, column 1
