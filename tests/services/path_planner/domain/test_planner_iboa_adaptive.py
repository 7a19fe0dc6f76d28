"""IBOA's linear population size reduction: scores split over iterations, the swarm, the schedule, a run."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from path_planner.domain.optimizers import IBOA, Budget, Scores
from path_planner.domain.optimizers import iboa as module
from path_planner.domain.optimizers.base import SearchRun, concat_scores
from path_planner.domain.optimizers.iboa import Swarm, shrink_islands
from path_planner.domain.optimizers.lshade import planned_size
from path_planner.domain.types import FloatArray


def split(v: FloatArray) -> Scores:
    """A sphere with one violated constraint wherever the first coordinate is negative."""
    base = (v * v).sum(axis=1)
    violation = (v[:, 0] < 0).astype(np.float64)
    return Scores(base + 100.0 * violation, base, violation)


def test_concat_scores_keeps_the_order_and_the_split() -> None:
    a = Scores(np.array([1.0]), np.array([0.5]), np.array([1.0]))
    b = Scores(np.array([2.0, 3.0]), np.array([2.0, 3.0]), np.array([0.0, 0.0]))
    s = concat_scores([a, b])
    assert (s.total.tolist(), s.base.tolist(), s.violation.tolist()) == ([1, 2, 3], [0.5, 2, 3], [1, 0, 0])
    assert concat_scores([]).total.size == 0


def test_scores_in_iterations_close_one_iteration_per_population_and_stop_at_the_budget() -> None:
    run = SearchRun(split, Budget(4, 3), None, None)
    first = run.score_in_iterations(np.ones((6, 2)))
    assert first.total.size == 6 and run.iteration == 1 and run.evaluations == 6
    rest = run.score_in_iterations(-np.ones((10, 2)))
    assert rest.violation.tolist() == [1.0] * 6  # the budget of 12 pays for 6 of the 10
    assert run.done and run.iteration == 3 and run.curve == [2.0, 2.0, 2.0]


def test_swarm_subset_carries_the_scores_with_the_positions() -> None:
    x = np.arange(8.0).reshape(4, 2)
    swarm = Swarm(x, split(x - 3.0))
    part = swarm.subset(np.array([2, 0]))
    np.testing.assert_array_equal(part.x, x[[2, 0]])
    np.testing.assert_array_equal(part.s.base, swarm.s.base[[2, 0]])
    assert swarm.subset(swarm.s.violation > 0).s.violation.tolist() == [1.0, 1.0]


def test_shrinking_keeps_the_best_by_the_epsilon_order() -> None:
    x = np.array([[-0.1, 0.0], [1.0, 0.0], [2.0, 0.0], [0.5, 0.0], [3.0, 0.0], [4.0, 0.0], [5.0, 0.0], [6.0, 0.0]])
    swarm = Swarm(x, split(x))
    # Feasible first by cost (3, 1, 2, 4, 5, 6, 7), the violating row 0 last; at eps = 1 it counts as feasible.
    one = np.zeros(8, dtype=np.int64)  # one island
    np.testing.assert_array_equal(shrink_islands(swarm, one, 6, eps=0.0)[0].x, x[1:7])
    np.testing.assert_array_equal(shrink_islands(swarm, one, 6, eps=1.0)[0].x, x[:6])
    assert shrink_islands(swarm, one, 8, eps=0.0)[0] is swarm  # nothing to cut


def test_a_run_shrinks_on_schedule_to_its_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []

    def size(nfe: int, max_nfe: int, n_init: int, n_min: int) -> int:
        sizes.append(planned_size(nfe, max_nfe, n_init, n_min))
        return sizes[-1]

    monkeypatch.setattr(module, "planned_size", size)
    lo, hi = np.full(5, -5.0), np.full(5, 5.0)
    r = IBOA(shrink_to=0.25).minimize(split, lo, hi, Budget(40, 30), seed=4)
    assert r.evaluations == 40 * 30 and r.curve.size == 30 and np.all(np.diff(r.curve) <= 0)
    assert sizes[0] < 40 and sizes[-1] == 10 and all(b <= a for a, b in itertools.pairwise(sizes))
    assert r.best_cost < 1e-3
    sizes.clear()
    IBOA(shrink_to=0.0).minimize(split, lo, hi, Budget(40, 30), seed=4)
    assert sizes[-1] == 4  # never below L-SHADE's floor
    sizes.clear()
    IBOA(shrink_to=None).minimize(split, lo, hi, Budget(40, 30), seed=4)
    assert sizes == []
