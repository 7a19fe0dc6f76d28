"""IBOA's closing compass search: its polls, its steps, the budget, and a run that hands over to it."""

from __future__ import annotations

import numpy as np
import pytest
from path_planner.domain.optimizers import IBOA, Budget, Scores
from path_planner.domain.optimizers import iboa as module
from path_planner.domain.optimizers.base import SearchRun
from path_planner.domain.optimizers.polish import compass_search
from path_planner.domain.types import FloatArray

TARGET = np.array([0.3, -1.2, 2.0, 0.7])


def shifted(v: FloatArray) -> Scores:
    """A separable quadratic around TARGET with one violated constraint wherever the first coordinate is below 0.5."""
    base = ((v - TARGET) ** 2 * np.arange(1, v.shape[1] + 1)).sum(axis=1)
    violation = (v[:, 0] < 0.5).astype(np.float64)
    return Scores(base + 100.0 * violation, base, violation)


def test_compass_search_closes_on_the_optimum_within_the_budget() -> None:
    calls: list[int] = []

    def counted(v: FloatArray) -> Scores:
        calls.append(v.shape[0])
        return shifted(v)

    run = SearchRun(counted, Budget(8, 60), None, None)
    x0 = np.array([1.5, 0.0, 0.0, 0.0])
    s0 = run.score(x0[None])
    lo, hi = np.full(4, -5.0), np.full(4, 5.0)
    x = compass_search(run, x0, s0, np.full(4, 1.0), lo, hi)
    assert run.done and run.evaluations == 8 * 60  # the whole budget, not one evaluation more
    # The constrained optimum sits on the constraint's edge, x0 = 0.5; the rest reach TARGET's other coordinates.
    np.testing.assert_allclose(x, [0.5, -1.2, 2.0, 0.7], atol=1e-6)
    assert shifted(x[None]).violation[0] == 0.0
    assert set(calls[1:-1]) <= {8, 1}  # one call per poll of 2·D points, one for the combined move


def test_compass_search_prefers_fewer_violations_to_a_lower_cost() -> None:
    run = SearchRun(shifted, Budget(9, 2), None, None)
    x0 = np.array([0.6, -1.2, 2.0, 0.7])  # feasible, cost 0.01; a step of 0.3 down is infeasible with cost 0
    s0 = run.score(x0[None])
    x = compass_search(run, x0, s0, np.array([0.3, 1.0, 1.0, 1.0]), np.full(4, -5.0), np.full(4, 5.0))
    np.testing.assert_array_equal(x, x0)  # the infeasible cheaper point is refused, so is every worse one


def test_polish_takes_its_share_of_the_budget_after_the_swarm(monkeypatch: pytest.MonkeyPatch) -> None:
    handed: list[int] = []

    def spy(run: SearchRun, x: FloatArray, s: Scores, step: FloatArray, lo: FloatArray, hi: FloatArray) -> FloatArray:
        handed.append(run.evaluations)
        assert step.shape == x.shape and np.all(step >= 1e-6 * (hi - lo)) and np.all(step <= 0.1 * (hi - lo))
        return compass_search(run, x, s, step, lo, hi)

    monkeypatch.setattr(module, "compass_search", spy)
    lo, hi = np.full(4, -5.0), np.full(4, 5.0)
    r = IBOA(polish=0.25).minimize(shifted, lo, hi, Budget(20, 40), seed=3)
    assert r.evaluations == 800 and r.curve.size == 40
    assert 600 <= handed[0] < 620  # the swarm stops at its first generation past 75 % of the budget
    IBOA().minimize(shifted, lo, hi, Budget(20, 40), seed=3)
    assert len(handed) == 1  # no polish unless asked


def test_polish_improves_a_seeded_swarms_ending() -> None:
    lo, hi = np.full(4, -5.0), np.full(4, 5.0)
    plain = [IBOA().minimize(shifted, lo, hi, Budget(20, 40), seed=s).best_cost for s in range(5)]
    polished = [IBOA(polish=0.2).minimize(shifted, lo, hi, Budget(20, 40), seed=s).best_cost for s in range(5)]
    assert max(polished) < min(plain)  # every polished run ends below every plain one
