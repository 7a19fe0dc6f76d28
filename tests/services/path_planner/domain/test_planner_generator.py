"""The seeded scenario generator: terrain kinds, 4 to 12 threats, start and goal, a checked feasible corridor."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from path_planner.domain.errors import ScenarioError
from path_planner.domain.generator import TERRAIN_KINDS, THREATS, GeneratorSettings, generate, has_corridor
from path_planner.domain.scenario import Terrain, Threat


@pytest.mark.parametrize("kind", TERRAIN_KINDS)
@pytest.mark.parametrize("seed", range(4))
def test_every_generated_scenario_has_a_checked_corridor(kind: str, seed: int) -> None:
    sc = generate(seed, kind)
    assert THREATS[0] <= len(sc.threats) <= THREATS[1]
    assert has_corridor(sc)
    b = sc.bounds
    short = min(b.x_max - b.x_min, b.y_max - b.y_min)
    assert math.dist(sc.start[:2], sc.goal[:2]) >= 0.5 * short
    assert sc.name == f"{kind}-{seed}"


def test_the_seed_fixes_the_scenario() -> None:
    a, b, c = generate(7, "peaks"), generate(7, "peaks"), generate(8, "peaks")
    assert a.terrain.fingerprint == b.terrain.fingerprint and a.threats == b.threats and a.start == b.start
    assert a.terrain.fingerprint != c.terrain.fingerprint and a.threats != c.threats


def test_seeds_vary_headings_and_threat_counts() -> None:
    scenarios = [generate(seed, "ridges") for seed in range(8)]
    headings = {
        round(math.degrees(math.atan2(s.goal[1] - s.start[1], s.goal[0] - s.start[0])) // 90) for s in scenarios
    }
    assert len(headings) >= 3
    assert len({len(s.threats) for s in scenarios}) >= 3


def test_urban_terrain_is_flat_blocks_between_streets() -> None:
    h = generate(1, "urban").terrain.height
    assert (h == 0).mean() > 0.2  # streets (and parks)
    assert h.max() <= 80.0
    assert len(np.unique(h)) > 10  # blocks of different heights


def test_corridor_check_rejects_a_wall_of_threats() -> None:
    sc = generate(0, "peaks")
    b = sc.bounds
    # Cylinders every 20 m across the map between start and goal leave no way through.
    mx, my = 0.5 * (sc.start[0] + sc.goal[0]), 0.5 * (sc.start[1] + sc.goal[1])
    dx, dy = sc.goal[0] - sc.start[0], sc.goal[1] - sc.start[1]
    norm = math.hypot(dx, dy)
    across = np.linspace(-2000, 2000, 201)
    wall = tuple(
        Threat(float(mx - dy / norm * t), float(my + dx / norm * t), 15.0)
        for t in across
        if b.contains(mx - dy / norm * t, my + dx / norm * t)
    )
    walled = replace(sc, threats=wall)
    assert not has_corridor(walled)


@pytest.mark.slow
def test_no_corridor_in_any_draw_is_an_error() -> None:
    """Spikes 2 km tall on every other cell: every flown path meets one, whatever the threats."""
    rows, cols = np.indices((200, 200))
    spikes = Terrain(np.where((rows + cols) % 2 == 1, 2000.0, 0.0), 5.0)
    with pytest.raises(ScenarioError) as err:
        generate(0, "spikes", GeneratorSettings(), terrain=spikes)
    assert err.value.field == "scenario.threats"
