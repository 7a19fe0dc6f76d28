"""IBOA's islands: each island shrinks by its own ranking, searches on its own until the merge, then one swarm."""

from __future__ import annotations

from typing import Any

import numpy as np
from path_planner.domain.optimizers import IBOA, Budget, Scores
from path_planner.domain.optimizers.iboa import Swarm, shrink_islands
from path_planner.domain.types import FloatArray


def sphere(v: FloatArray) -> Scores:
    """A plain sphere, no constraints."""
    f = (v * v).sum(axis=1)
    return Scores(f, f, np.zeros_like(f))


def test_each_island_loses_its_own_worst_when_the_swarm_shrinks() -> None:
    # Island 0 holds the four best; the two worst overall are both on island 1.
    x = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0], [6.0], [7.0]])
    island = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    swarm, kept = shrink_islands(Swarm(x, sphere(x)), island, 6, eps=0.0)
    np.testing.assert_array_equal(swarm.x[:, 0], [0.0, 1.0, 2.0, 4.0, 5.0, 6.0])
    np.testing.assert_array_equal(kept, [0, 0, 0, 1, 1, 1])
    one, _ = shrink_islands(Swarm(x, sphere(x)), np.zeros(8, dtype=np.int64), 6, eps=0.0)
    np.testing.assert_array_equal(one.x[:, 0], x[:6, 0])  # a single swarm drops the two worst
    # Down to 5: each island keeps its two best, and of the islands' third best the better overall (2.0, not 6.0).
    five, labels = shrink_islands(Swarm(x, sphere(x)), island, 5, eps=0.0)
    np.testing.assert_array_equal(five.x[:, 0], [0.0, 1.0, 2.0, 4.0, 5.0])
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1])


def test_partners_and_elite_come_from_the_butterflys_own_island() -> None:
    rng = np.random.default_rng(5)
    x = rng.random((40, 3))
    island = np.arange(40) % 4
    swarm = Swarm(x, sphere(x))
    order = np.lexsort((swarm.s.base, island))  # island by island, best first
    d = IBOA(elite=0.2, levy_share=0.1).draws(rng, island, order, np.bincount(island), 3, progress=0.5)
    assert np.all(island[d.j] == island) and np.all(island[d.k] == island) and np.all(island[d.e] == island)
    assert np.all(d.j != d.k)
    # The elite: each island's two best (20 % of 10); the Lévy-flown: its worst (10 %), around its best.
    best_two = {int(i) for g in range(4) for i in order[10 * g : 10 * g + 2]}
    assert set(d.e.tolist()) <= best_two
    np.testing.assert_array_equal(np.sort(d.worst), np.sort(order[9::10]))
    np.testing.assert_array_equal(island[d.centre], island[d.worst])
    assert np.all(swarm.s.base[d.centre] == [swarm.s.base[island == island[w]].min() for w in d.worst])


class Spied(IBOA):
    """IBOA recording (progress, island labels, positions) of every generation it builds trials for."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.calls: list[tuple[float, FloatArray, FloatArray]] = []

    def _trials(self, rng, run, swarm, island, eps, progress, box):  # type: ignore[no-untyped-def]
        self.calls.append((progress, island.copy(), swarm.x.copy()))
        return super()._trials(rng, run, swarm, island, eps, progress, box)


def test_islands_search_apart_until_the_merge_then_as_one_swarm() -> None:
    optimizer = Spied(islands=4, island_size=10, islands_until=0.5, shrink_to=0.5)
    calls = optimizer.calls
    lo, hi = np.full(3, -5.0), np.full(3, 5.0)
    r = optimizer.minimize(sphere, lo, hi, Budget(40, 30), seed=2)
    assert r.evaluations == 40 * 30 and r.best_cost < 1e-3
    before = [island for p, island, _ in calls if p < 0.5]
    after = [island for p, island, _ in calls if p >= 0.5]
    assert len(before) >= 10 and len(after) >= 10
    for island in before:  # four islands, shrinking together
        sizes = np.bincount(island)
        assert sizes.size == 4 and sizes.max() - sizes.min() <= 1
    assert all(not island.any() for island in after)


def test_islands_keep_apart_basins_a_single_swarm_merges() -> None:
    def two_wells(v: FloatArray) -> Scores:
        """Two basins, x = -3 (depth 0.1) and x = +3 (depth 0), far apart in every coordinate."""
        f = np.minimum(((v + 3.0) ** 2).sum(axis=1) + 0.1, ((v - 3.0) ** 2).sum(axis=1))
        return Scores(f, f, np.zeros_like(f))

    lo, hi = np.full(4, -5.0), np.full(4, 5.0)
    both = {}
    for islands in (1, 4):
        held = []
        for seed in range(16):
            optimizer = Spied(islands=islands, island_size=20, islands_until=1.0)  # progress < 1: never merged
            optimizer.minimize(two_wells, lo, hi, Budget(80, 40), seed=seed)
            _, island, x = optimizer.calls[-1]  # the last generation
            sides = {float(np.sign(np.median(x[island == i, 0]))) for i in np.unique(island)}
            held.append(sides == {-1.0, 1.0})
        both[islands] = sum(held)
    # At least half the runs still hold both basins, on different islands (9 of 16; 11 of 16 before IBOA projected its
    # out-of-box steps onto the box, whose edges at ±5 draw the islands' explorers).
    assert both[4] >= 8
    assert both[1] == 0


def test_small_populations_get_fewer_islands() -> None:
    assert IBOA().island_count(500) == 4  # the 100,000-evaluation budget's population
    assert IBOA().island_count(150) == 1  # the 30,000-evaluation one's: islands of 37 would be too small
    assert IBOA(islands=4, island_size=10).island_count(40) == 2  # final size 8: two islands of 4
    assert IBOA(islands=4, island_size=2).island_count(10) == 1
    assert IBOA(islands=4, island_size=2, shrink_to=None).island_count(10) == 2


def test_a_run_with_islands_is_bit_identical_for_the_same_seed() -> None:
    def split(v: FloatArray) -> Scores:
        """A shifted sphere with one violated constraint wherever the first coordinate is negative."""
        base = ((v - 0.3) ** 2).sum(axis=1)
        violation = (v[:, 0] < 0).astype(np.float64)
        return Scores(base + 100.0 * violation, base, violation)

    # The 100,000-evaluation budget of the suite and the SPSO scenario: population 500, four islands.
    assert IBOA().island_count(500) == 4
    lo, hi = np.full(30, -1.0), np.full(30, 1.0)
    first, again, other = (IBOA().minimize(split, lo, hi, Budget(500, 200), seed=s) for s in (7, 7, 8))
    assert first.evaluations == again.evaluations == 100_000
    assert first.best_cost == again.best_cost
    np.testing.assert_array_equal(first.best_x, again.best_x)
    np.testing.assert_array_equal(first.curve, again.curve)
    assert not np.array_equal(first.best_x, other.best_x)  # the seed is what decides
