"""BOA's update rules against Arora & Singh's equations, on tiny hand-made and seeded examples."""

from __future__ import annotations

import numpy as np
import pytest
from path_planner.domain.optimizers.base import Budget, uniform_population
from path_planner.domain.optimizers.boa import (
    BOA,
    BoaDraws,
    boa_move,
    draw,
    fragrance,
    greedy,
    next_sensory_modality,
)


def test_fragrance_is_c_times_intensity_to_the_a() -> None:
    cost = np.array([1024.0, 1.0, 0.0])
    np.testing.assert_allclose(fragrance(cost, 0.01, 0.1), [0.02, 0.01, 0.0])
    np.testing.assert_allclose(fragrance(np.array([3.0]), 0.5, 1.0, "inverse"), [0.125])


def test_sensory_modality_update() -> None:
    assert next_sensory_modality(0.01, 100) == pytest.approx(0.035)
    c = 0.01
    for _ in range(200):
        c = next_sensory_modality(c, 200)
    assert c == pytest.approx(0.2238, abs=2e-3)  # about sqrt(0.05 + 0.01**2) after T steps


def test_global_and_local_steps() -> None:
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    frag = np.array([0.1, 0.2, 0.3])
    best = np.array([10.0, 10.0])
    d = BoaDraws(
        r=np.array([0.5, 0.5, 1.0]),
        use_global=np.array([True, False, True]),
        j=np.array([2, 0, 1]),
        k=np.array([1, 2, 0]),
    )
    got = boa_move(x, frag, best, d)
    expected = np.array(
        [
            [1 + (0.25 * 10 - 1) * 0.1, 2 + (0.25 * 10 - 2) * 0.1],  # x + (r² g* - x) f
            [3 + (0.25 * 1 - 5) * 0.2, 4 + (0.25 * 2 - 6) * 0.2],  # x + (r² x_j - x_k) f
            [5 + (10 - 5) * 0.3, 6 + (10 - 6) * 0.3],
        ]
    )
    np.testing.assert_allclose(got, expected)


def test_greedy_acceptance_keeps_no_worse_moves() -> None:
    x = np.array([[0.0], [1.0], [2.0]])
    f = np.array([5.0, 5.0, 5.0])
    x_new, f_new = greedy(x, f, np.array([[9.0], [8.0], [7.0]]), np.array([4.0, 5.0, 6.0]))
    np.testing.assert_array_equal(x_new[:, 0], [9.0, 8.0, 2.0])
    np.testing.assert_array_equal(f_new, [4.0, 5.0, 5.0])


def test_neighbours_are_distinct() -> None:
    d = draw(np.random.default_rng(0), 7, 0.8)
    assert np.all(d.j != d.k)
    assert 0.5 < d.use_global.mean() <= 1.0


def test_run_applies_the_equations_in_order() -> None:
    lo, hi = np.array([-5.0, -5.0]), np.array([5.0, 5.0])
    seen: list[np.ndarray] = []

    def sphere(x: np.ndarray) -> np.ndarray:
        seen.append(x.copy())
        return (x**2).sum(axis=1) + 1.0

    BOA().minimize(sphere, lo, hi, Budget(6, 3), seed=42)
    rng = np.random.default_rng(42)
    x = uniform_population(rng, 6, lo, hi)
    f = (x**2).sum(axis=1) + 1.0
    np.testing.assert_allclose(seen[0], x)
    c = 0.01
    for it in (1, 2):
        best = x[np.argmin(f)]
        trial = np.clip(boa_move(x, fragrance(f, c, 0.1), best, draw(rng, 6, 0.8)), lo, hi)
        np.testing.assert_allclose(seen[it], trial)
        x, f = greedy(x, f, trial, (trial**2).sum(axis=1) + 1.0)
        c = next_sensory_modality(c, 3)
    assert len(seen) == 3


def test_defaults_are_the_papers() -> None:
    boa = BOA()
    assert (boa.p, boa.c, boa.a, boa.intensity) == (0.8, 0.01, 0.1, "cost")
