"""The SPSO cost, term by term, against hand-computed cases and a direct transcription of the MATLAB loops."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from path_planner.domain.cost import INFEASIBLE, CostWeights, PathCost
from path_planner.domain.scenario import NoFlyZone, Scenario, Terrain, Threat


def one(cost: PathCost, *waypoints: tuple[float, float, float]) -> dict[str, Any]:
    b = cost.evaluate(np.array([waypoints], dtype=np.float64))
    return {**b.row(0), "collisions": int(b.collisions[0]), "under": int(b.under_ground[0]), "ok": bool(b.feasible[0])}


def test_straight_flat_path_costs_only_its_length(flat: Any) -> None:
    r = one(PathCost(flat()), (10, 50, 150))
    assert r["length"] == pytest.approx(80.0)
    assert (r["threat"], r["altitude"], r["smoothness"]) == (0.0, 0.0, 0.0)
    assert r["total"] == pytest.approx(400.0)
    assert r["ok"]


def test_length_uses_absolute_altitude_and_climb_change_counts(flat: Any) -> None:
    h = np.zeros((100, 100))
    h[49, 9] = 30.0  # the cell under x = 10, y = 50 (row y-1, column x-1)
    r = one(PathCost(flat(terrain=Terrain(h))), (10, 50, 150))
    assert r["length"] == pytest.approx(100.0)  # two 40-30-50 triangles
    climb = 2 * math.degrees(math.atan2(30, 40))
    assert r["smoothness"] == pytest.approx(climb)
    assert r["total"] == pytest.approx(5 * 100 + climb)


def test_altitude_term_is_distance_from_band_middle(flat: Any) -> None:
    r = one(PathCost(flat()), (10, 50, 170))
    assert r["altitude"] == pytest.approx(20.0)
    climb = 2 * math.degrees(math.atan2(20, 40))  # +26.6 then -26.6 degrees: a 53.1-degree change
    assert r["total"] == pytest.approx(5 * 2 * math.hypot(40, 20) + 10 * 20 + climb)


def test_under_ground_is_infinite(flat: Any) -> None:
    r = one(PathCost(flat()), (10, 50, -5))
    assert r["altitude"] >= INFEASIBLE
    assert r["under"] == 1
    assert not r["ok"]
    assert r["total"] >= INFEASIBLE


@pytest.mark.parametrize(
    ("threat_x", "expected", "collisions"),
    [
        (35.0, 0.0, 0),  # d = 25 > R + s + m = 21
        (31.0, 0.0, 0),  # d = 21 exactly: no cost
        (30.0, 2.0, 0),  # d = 20: (21 - 20) on each of the two segments
        (21.0, 20.0, 0),  # d = 11 = R + s exactly: inside the margin, cost 10 per segment
    ],
)
def test_threat_margin_band(flat: Any, threat_x: float, expected: float, collisions: int) -> None:
    r = one(PathCost(flat(threats=(Threat(threat_x, 50, 10),))), (10, 50, 150))
    assert r["threat"] == pytest.approx(expected)
    assert r["collisions"] == collisions


def test_threat_distance_is_to_the_segment_not_its_ends(flat: Any) -> None:
    # Closest approach of the first leg (10,10)-(10,50) to (25, 30) is its middle, 15 m away (R+s+m = 16);
    # the second leg is nearest at its end (10, 50), 25 m away.
    r = one(PathCost(flat(threats=(Threat(25, 30, 5),))), (10, 50, 150))
    assert r["threat"] == pytest.approx(16.0 - 15.0)


def test_collision_is_infinite(flat: Any) -> None:
    r = one(PathCost(flat(threats=(Threat(15, 50, 10),))), (10, 50, 150))
    assert r["collisions"] == 2
    assert r["threat"] >= 2 * INFEASIBLE
    assert not r["ok"]


def test_turn_over_45_degrees_is_added(flat: Any) -> None:
    sc = flat(goal=(50.0, 50.0, 150.0))
    assert one(PathCost(sc), (50, 10, 150))["smoothness"] == pytest.approx(90.0)
    # From heading 26.6 to 56.3 degrees: a 29.7-degree turn stays under the limit.
    assert one(PathCost(sc), (30, 20, 150))["smoothness"] == pytest.approx(0.0)
    assert one(PathCost(sc), (30, 10, 150))["smoothness"] == pytest.approx(math.degrees(math.atan2(40, 20)))


def test_zero_length_leg_uses_the_neighbouring_leg(flat: Any) -> None:
    sc = flat(goal=(50.0, 50.0, 150.0), n_waypoints=2)
    r = one(PathCost(sc), (50, 10, 150), (50, 10, 150))
    assert r["smoothness"] == pytest.approx(180.0)  # the 90-degree corner is seen from both waypoints


def test_weights_are_configurable(flat: Any) -> None:
    sc = flat(threats=(Threat(30, 50, 10),))
    r = one(PathCost(sc, CostWeights(length=1, threat=3, altitude=0, smoothness=0)), (10, 50, 170))
    assert r["total"] == pytest.approx(2 * math.hypot(40, 20) + 3 * 2.0)


def test_no_fly_box_on_the_way_is_a_collision(flat: Any) -> None:
    box = NoFlyZone(5, 15, 60, 70, top=1000)
    r = one(PathCost(flat(no_fly_zones=(box,))), (10, 50, 150))
    assert r["collisions"] == 1
    assert r["threat"] == pytest.approx(INFEASIBLE + 12.0)  # 10 m box grown by s = 1 on both sides
    low = NoFlyZone(5, 15, 60, 70, top=100)
    assert one(PathCost(flat(no_fly_zones=(low,))), (10, 50, 150))["ok"]


def test_population_matches_single_paths(peaks_scenario: Scenario) -> None:
    rng = np.random.default_rng(3)
    cost = PathCost(peaks_scenario)
    pop = np.column_stack([rng.uniform(1, 200, 40), rng.uniform(1, 200, 40), rng.uniform(-10, 80, 40)]).reshape(8, 5, 3)
    together = cost(pop)
    apart = np.array([cost(pop[i : i + 1])[0] for i in range(8)])
    np.testing.assert_allclose(together, apart)


def matlab_cost(sc: Scenario, wp: np.ndarray) -> float:
    """A line-by-line transcription of the SPSO MyCost.m loops (J_inf as INFEASIBLE + depth)."""
    pts = np.vstack([sc.start, wp, sc.goal])
    h = sc.terrain.height
    za = [p[2] + h[math.floor(p[1] + 0.5) - 1, math.floor(p[0] + 0.5) - 1] for p in pts]
    j1 = sum(math.dist((*pts[i, :2], za[i]), (*pts[i + 1, :2], za[i + 1])) for i in range(len(pts) - 1))
    j2 = 0.0
    for th in sc.threats:
        for i in range(len(pts) - 1):
            a, b, c = pts[i, :2], pts[i + 1, :2], np.array([th.x, th.y])
            ab = b - a
            t = 0.0 if not ab.any() else min(1.0, max(0.0, float((c - a) @ ab) / float(ab @ ab)))
            d = float(np.linalg.norm(a + t * ab - c))
            inner, outer = th.radius + sc.uav_size, th.radius + sc.uav_size + sc.danger_margin
            j2 += 0.0 if d > outer else (INFEASIBLE + inner - d if d < inner else outer - d)
    j3 = sum(INFEASIBLE - z if z < 0 else abs(z - (sc.z_min + sc.z_max) / 2) for z in wp[:, 2])
    j4 = 0.0
    n = len(pts)
    for i in range(n - 2):
        for j in range(i, -1, -1):
            s1 = pts[j + 1, :2] - pts[j, :2]
            if s1.any():
                break
        for j in range(i, n - 2):
            s2 = pts[j + 2, :2] - pts[j + 1, :2]
            if s2.any():
                break
        c1 = math.degrees(math.atan2(za[i + 1] - za[i], float(np.linalg.norm(s1))))
        c2 = math.degrees(math.atan2(za[i + 2] - za[i + 1], float(np.linalg.norm(s2))))
        turn = math.degrees(math.atan2(abs(s1[0] * s2[1] - s1[1] * s2[0]), float(s1 @ s2)))
        j4 += turn if turn > 45 else 0.0
        j4 += abs(c2 - c1) if abs(c2 - c1) > 45 else 0.0
    return 5 * j1 + j2 + 10 * j3 + j4


def test_matches_matlab_transcription_on_the_spso_terrain(spso_scenario: Scenario) -> None:
    rng = np.random.default_rng(11)
    pop = np.stack(
        [rng.uniform(1, 1045, (30, 10)), rng.uniform(1, 879, (30, 10)), rng.uniform(-20, 220, (30, 10))], axis=-1
    )
    # Zero-length legs exercise the search for the neighbouring legs: a repeated waypoint, every waypoint at the
    # start (one leg left), a run of repeats, the first waypoint at the start and the last at the goal.
    pop[0, 3] = pop[0, 2]
    pop[1, :, :2] = spso_scenario.start_array[:2]
    pop[2, 4:8] = pop[2, 3]
    pop[3, 0, :2] = spso_scenario.start_array[:2]
    pop[4, -1, :2] = spso_scenario.goal_array[:2]
    got = PathCost(spso_scenario, leg_samples=0)(pop)  # the paper's cost checks the waypoints only
    want = [matlab_cost(spso_scenario, pop[i]) for i in range(30)]
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_spso_straight_line_collides(spso_scenario: Scenario) -> None:
    s, g = spso_scenario.start_array, spso_scenario.goal_array
    line = s + np.linspace(0, 1, 12)[1:-1, None] * (g - s)
    b = PathCost(spso_scenario).evaluate(line[None])
    assert b.collisions[0] > 0  # the straight line crosses the threat at (500, 350)
