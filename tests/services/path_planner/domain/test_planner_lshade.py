"""L-SHADE and jSO against their papers' equations on hand-made examples, and on standard functions."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest
from path_planner.domain.errors import BudgetError
from path_planner.domain.optimizers import JSO, LSHADE, Budget
from path_planner.domain.optimizers import lshade as module
from path_planner.domain.optimizers.lshade import (
    TERMINAL,
    Generation,
    Memory,
    distinct_partners,
    pbest_draw,
    planned_size,
    sample_cauchy_f,
    sample_normal_cr,
    trial_vectors,
    trim_archive,
    update_memory,
    weighted_lehmer_mean,
)
from path_planner.domain.types import FloatArray


def test_weighted_lehmer_mean_by_hand() -> None:
    # S = (0.5, 0.9), improvements 1 and 3: w = (0.25, 0.75)
    got = weighted_lehmer_mean(np.array([0.5, 0.9]), np.array([0.25, 0.75]))
    assert got == pytest.approx((0.25 * 0.25 + 0.75 * 0.81) / (0.25 * 0.5 + 0.75 * 0.9))  # 0.8375


def test_one_generations_success_history_update_by_hand() -> None:
    memory = Memory.filled(3, 0.5, 0.5)
    update_memory(memory, np.array([0.5, 0.9]), np.array([0.2, 0.6]), np.array([1.0, 3.0]))
    # M_F: Lehmer mean of S_F weighted by Δ/ΣΔ; M_CR: the same weighted Lehmer mean of S_CR (L-SHADE)
    assert memory.f[0] == pytest.approx(0.67 / 0.8)
    assert memory.cr[0] == pytest.approx((0.25 * 0.04 + 0.75 * 0.36) / (0.25 * 0.2 + 0.75 * 0.6))  # 0.56
    np.testing.assert_array_equal(memory.f[1:], [0.5, 0.5])
    np.testing.assert_array_equal(memory.cr[1:], [0.5, 0.5])
    assert memory.pos == 1


def test_no_success_leaves_the_memory_alone() -> None:
    memory = Memory.filled(2, 0.5, 0.5)
    update_memory(memory, np.empty(0), np.empty(0), np.empty(0))
    assert memory.pos == 0
    np.testing.assert_array_equal(memory.f, [0.5, 0.5])


def test_terminal_cr_is_kept_and_gives_zero() -> None:
    memory = Memory.filled(2, 0.5, 0.5)
    update_memory(memory, np.array([0.7]), np.array([0.0]), np.array([2.0]))  # max S_CR = 0
    assert memory.cr[0] == TERMINAL
    update_memory(memory, np.array([0.7]), np.array([0.4]), np.array([2.0]))
    update_memory(memory, np.array([0.7]), np.array([0.4]), np.array([2.0]))  # slot 0 again
    assert memory.cr[0] == TERMINAL and memory.cr[1] == pytest.approx(0.4)
    cr = sample_normal_cr(np.random.default_rng(0), np.array([TERMINAL, 0.5, 0.5]))
    assert cr[0] == 0.0 and 0.0 <= cr[1] <= 1.0


def test_jso_averages_each_update_with_the_old_value() -> None:
    memory = Memory.filled(5, 0.3, 0.8)
    update_memory(memory, np.array([0.5, 0.9]), np.array([0.2, 0.6]), np.array([1.0, 3.0]), average=True)
    assert memory.f[0] == pytest.approx((0.8375 + 0.3) / 2)
    assert memory.cr[0] == pytest.approx((0.56 + 0.8) / 2)


def test_population_size_schedule() -> None:
    # N = round(N_init + (N_min − N_init)·nfe/max_nfe), halves rounded up as in the authors' C++
    assert [planned_size(nfe, 1000, 100, 4) for nfe in (0, 100, 250, 500, 1000)] == [100, 90, 76, 52, 4]
    assert planned_size(3, 12, 6, 4) == 6  # 5.5 rounds to 6


def test_parameter_sampling() -> None:
    rng = np.random.default_rng(1)
    f = sample_cauchy_f(rng, np.full(20_000, 0.5))
    assert f.min() > 0 and f.max() == 1.0
    assert np.median(f) == pytest.approx(0.5, abs=0.01)  # Cauchy's location is its median
    cr = sample_normal_cr(rng, np.full(20_000, 0.5))
    assert cr.min() >= 0 and cr.max() <= 1
    assert cr.std() == pytest.approx(0.1, abs=0.005)


def test_partners_are_distinct_and_cover_the_archive() -> None:
    r1, r2 = distinct_partners(np.random.default_rng(2), 5, 8)
    for _ in range(200):
        a, b = distinct_partners(np.random.default_rng(len(r1)), 5, 8)
        r1, r2 = np.concatenate([r1, a]), np.concatenate([r2, b])
    i = np.tile(np.arange(5), len(r1) // 5)
    assert np.all(r1 != i) and np.all(r2 != i) and np.all(r2 != r1)
    assert set(r1.tolist()) == set(range(5)) and set(r2.tolist()) == set(range(8))


def test_pbest_among_the_best_and_never_itself_when_asked() -> None:
    cost = np.array([5.0, 1.0, 4.0, 0.0, 3.0, 2.0, 9.0, 8.0, 7.0, 6.0])
    rng = np.random.default_rng(3)
    picks = np.stack([pbest_draw(rng, cost, 0.3, exclude_self=True) for _ in range(300)])
    assert set(picks.ravel().tolist()) == {3, 1, 5}  # the best round(0.3·10) = 3
    assert np.all(picks != np.arange(10))
    loose = np.stack([pbest_draw(rng, cost, 0.1, exclude_self=False) for _ in range(300)])
    assert set(loose.ravel().tolist()) == {3, 1}  # at least two, and may be itself
    assert np.any(loose[:, 3] == 3)


def test_trial_vector_by_hand() -> None:
    x = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 1.0]])
    archive = np.array([[2.0, 2.0]])
    g = Generation(
        f=np.array([0.5, 1.0, 0.5]), cr=np.ones(3), f_w=np.array([0.25, 1.0, 0.5]), pbest=np.array([1, 2, 1])
    )
    mask = np.array([[True, False], [True, True], [False, True]])
    lo, hi = np.array([-1.0, -1.0]), np.array([4.0, 4.0])
    got = trial_vectors(x, np.concatenate([x, archive]), g, (np.array([2, 0, 1]), np.array([3, 2, 0])), mask, (lo, hi))
    # row 0: 0 + 0.25·(1 − 0) + 0.5·(3 − 2) = 0.75; second coordinate kept from the parent
    # row 1: (1, 2) + 1·((3, 1) − (1, 2)) + 1·((0, 0) − (3, 1)) = (0, 0)
    # row 2: 1 + 0.5·(2 − 1) + 0.5·(2 − 0) = 2.5; first coordinate kept
    np.testing.assert_allclose(got, [[0.75, 0.0], [0.0, 0.0], [3.0, 2.5]])
    g_out = Generation(f=np.ones(3), cr=np.ones(3), f_w=np.full(3, 4.0), pbest=np.array([2, 2, 2]))
    out = trial_vectors(x, x, g_out, (np.array([1, 2, 0]), np.array([2, 0, 1])), np.ones((3, 2), bool), (lo, hi))
    # out of the box: halfway between the parent and the bound, as in the authors' code
    assert out[0, 0] == pytest.approx(2.0)  # 0 + 4·3 + (1 − 3) = 10 > 4: (0 + 4)/2


def test_archive_trim_keeps_at_most_its_capacity() -> None:
    archive = np.arange(20.0).reshape(10, 2)
    kept = trim_archive(np.random.default_rng(0), archive, 4)
    assert kept.shape == (4, 2)
    assert {tuple(r) for r in kept.tolist()} <= {tuple(r) for r in archive.tolist()}
    assert trim_archive(np.random.default_rng(0), archive, 12) is archive


def test_a_run_follows_the_size_schedule_and_bounds_the_archive(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[tuple[int, int]] = []
    archives: list[tuple[int, int]] = []
    real_size, real_trim = module.planned_size, module.trim_archive

    def size(nfe: int, max_nfe: int, n_init: int, n_min: int) -> int:
        sizes.append((nfe, real_size(nfe, max_nfe, n_init, n_min)))
        return sizes[-1][1]

    def trim(rng: np.random.Generator, archive: FloatArray, capacity: int) -> FloatArray:
        kept = real_trim(rng, archive, capacity)
        archives.append((kept.shape[0], capacity))
        return kept

    monkeypatch.setattr(module, "planned_size", size)
    monkeypatch.setattr(module, "trim_archive", trim)
    lo, hi = np.full(5, -5.0), np.full(5, 5.0)
    r = LSHADE().minimize(lambda v: (v**2).sum(axis=1), lo, hi, Budget(40, 30), seed=4)
    assert r.evaluations == 40 * 30 and r.curve.size == 30
    assert sizes[-1] == (1200, 4) and all(b[1] <= a[1] for a, b in itertools.pairwise(sizes))
    for (_, n), (kept, capacity) in zip(sizes, archives, strict=True):
        assert capacity == round(2.6 * max(n, 4)) and kept <= capacity
    assert any(kept == capacity for kept, capacity in archives)  # the bound is reached, and holds


def test_jso_schedules() -> None:
    rng = np.random.default_rng(5)
    memory = Memory.filled(5, 0.1, 0.1)
    cost = np.arange(200.0)
    early = JSO()._generation(rng, memory, cost, 0.1)
    assert early.cr.min() >= 0.7 and early.f.max() <= 0.7
    np.testing.assert_allclose(early.f_w, 0.7 * early.f)
    assert np.all(early.pbest != np.arange(200)) and early.pbest.max() < 50  # p = 0.25 − 0.125·0.1
    middle = JSO()._generation(rng, memory, cost, 0.3)
    assert middle.cr.min() >= 0.6 and middle.cr.min() < 0.7
    np.testing.assert_allclose(middle.f_w, 0.8 * middle.f)
    late = JSO()._generation(rng, memory, cost, 0.9)
    np.testing.assert_allclose(late.f_w, 1.2 * late.f)
    assert late.pbest.max() < round(200 * (0.25 - 0.125 * 0.9)) and late.f.max() > 0.7
    # the last slot stays at 0.9/0.9: a fifth of the draws centre there although the memory holds 0.1
    assert np.mean(late.f > 0.5) == pytest.approx(0.2, abs=0.08)


def test_too_small_a_population_is_refused() -> None:
    with pytest.raises(BudgetError) as err:
        LSHADE().minimize(lambda v: v.sum(axis=1), np.zeros(3), np.ones(3), Budget(3, 10), seed=0)
    assert err.value.field == "optimizer.population"


def sphere(x: FloatArray) -> FloatArray:
    res: FloatArray = (x * x).sum(axis=1)
    return res


def rosenbrock(x: FloatArray) -> FloatArray:
    res: FloatArray = (100.0 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (x[:, :-1] - 1.0) ** 2).sum(axis=1)
    return res


def rastrigin(x: FloatArray) -> FloatArray:
    res: FloatArray = (x * x - 10.0 * np.cos(2 * np.pi * x) + 10.0).sum(axis=1)
    return res


@pytest.mark.slow
@pytest.mark.parametrize(("name", "population"), [("lshade", 540), ("jso", 466)])
@pytest.mark.parametrize("function", [sphere, rosenbrock, rastrigin])
def test_standard_functions_reach_the_published_zero(
    name: str, population: int, function: Callable[[FloatArray], FloatArray]
) -> None:
    """CEC 2014/2017 budget and box for D = 30 (300,000 evaluations, [−100, 100]^30, the papers' initial
    populations 18·D and 25·ln(D)·√D). Both papers report a zero error (below their 1e-8 threshold) on the
    shifted sphere, Rosenbrock and Rastrigin functions; the optimum here is shifted by a seeded offset."""
    shift = np.random.default_rng(99).uniform(-80, 80, 30)
    lo, hi = np.full(30, -100.0), np.full(30, 100.0)
    optimizer = LSHADE() if name == "lshade" else JSO()
    offset = 1.0 if function is rosenbrock else 0.0  # Rosenbrock's optimum is at 1, not 0
    r = optimizer.minimize(
        lambda v: function(v - shift + offset), lo, hi, Budget(population, 300_000 // population), seed=0
    )
    assert r.best_cost < 1e-8
