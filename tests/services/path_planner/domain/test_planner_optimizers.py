"""Optimizers: they improve, are deterministic per seed, honour budgets, callbacks and cancellation."""

from __future__ import annotations

import numpy as np
import pytest
from path_planner.domain.cost import PathCost
from path_planner.domain.encoding import SphericalEncoding
from path_planner.domain.errors import BudgetError
from path_planner.domain.optimizers import Budget, make_optimizer
from path_planner.domain.scenario import Scenario
from path_planner.domain.types import FloatArray

NAMES = ["boa", "iboa", "pso", "spso", "lshade", "jso"]


def objective(sc: Scenario) -> tuple[SphericalEncoding, PathCost]:
    return SphericalEncoding(sc), PathCost(sc)


@pytest.mark.parametrize("name", NAMES)
def test_improves_and_counts_evaluations(peaks_scenario: Scenario, name: str) -> None:
    enc, cost = objective(peaks_scenario)

    def f(v: FloatArray) -> FloatArray:
        return cost(enc.decode(v))

    r = make_optimizer(name).minimize(f, enc.lower, enc.upper, Budget(30, 40), seed=5)
    assert r.evaluations == 30 * 40
    assert r.curve.shape == (40,)
    assert np.all(np.diff(r.curve) <= 0)
    assert r.curve[-1] < r.curve[0]
    assert r.best_cost == pytest.approx(float(f(r.best_x[None])[0]))
    assert not r.cancelled


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_per_seed(peaks_scenario: Scenario, name: str) -> None:
    enc, cost = objective(peaks_scenario)

    def f(v: FloatArray) -> FloatArray:
        return cost(enc.decode(v))

    a = make_optimizer(name).minimize(f, enc.lower, enc.upper, Budget(20, 10), seed=7)
    b = make_optimizer(name).minimize(f, enc.lower, enc.upper, Budget(20, 10), seed=7)
    c = make_optimizer(name).minimize(f, enc.lower, enc.upper, Budget(20, 10), seed=8)
    np.testing.assert_array_equal(a.best_x, b.best_x)
    np.testing.assert_array_equal(a.curve, b.curve)
    assert not np.array_equal(a.best_x, c.best_x)


def test_iboa_beats_boa_on_peaks(peaks_scenario: Scenario) -> None:
    enc, cost = objective(peaks_scenario)

    def f(v: FloatArray) -> FloatArray:
        return cost(enc.decode(v))

    def median(name: str) -> float:
        runs = [make_optimizer(name).minimize(f, enc.lower, enc.upper, Budget(40, 50), seed=s) for s in range(3)]
        return float(np.median([r.best_cost for r in runs]))

    assert median("iboa") < median("boa")


def test_callbacks_and_cancellation(peaks_scenario: Scenario) -> None:
    enc, cost = objective(peaks_scenario)
    calls: list[tuple[int, float, float]] = []

    def f(v: FloatArray) -> FloatArray:
        return cost(enc.decode(v))

    def on_iteration(it: int, best: float, progress: float) -> None:
        calls.append((it, best, progress))

    r = make_optimizer("iboa").minimize(
        f, enc.lower, enc.upper, Budget(10, 20), seed=1, on_iteration=on_iteration, should_stop=lambda: len(calls) >= 3
    )
    assert r.cancelled
    assert [c[0] for c in calls] == [1, 2, 3]
    assert calls[-1][2] == pytest.approx(3 / 20)
    assert r.evaluations == 30
    assert r.curve.tolist() == [c[1] for c in calls]


def test_max_evaluations_caps_iterations(peaks_scenario: Scenario) -> None:
    enc, cost = objective(peaks_scenario)
    r = make_optimizer("pso").minimize(
        lambda v: cost(enc.decode(v)), enc.lower, enc.upper, Budget(10, 100, max_evaluations=55), seed=0
    )
    assert r.evaluations == 50
    assert r.curve.size == 5


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"population": 0, "iterations": 5}, "optimizer.population"),
        ({"population": 10, "iterations": 0}, "optimizer.iterations"),
        ({"population": 10, "iterations": 5, "max_evaluations": 3}, "optimizer.max_evaluations"),
    ],
)
def test_bad_budgets_name_the_field(kwargs: dict[str, int], field: str) -> None:
    with pytest.raises(BudgetError) as err:
        Budget(**kwargs)
    assert err.value.field == field
    assert field in str(err.value)


def test_unknown_optimizer() -> None:
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("ga")
