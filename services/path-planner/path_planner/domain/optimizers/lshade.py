"""L-SHADE (Tanabe & Fukunaga 2014) and jSO (Brest, Maučec & Bošković 2017), vectorised over the population.

L-SHADE, as in the authors' CEC 2014 code (version 1.0.1):
- success-history memory of H pairs (M_F, M_CR), all 0.5 at first; each individual picks a slot r at
  random, CR ~ N(M_CR[r], 0.1) clipped to [0, 1] (0 when the slot holds the terminal value ⊥), and
  F ~ Cauchy(M_F[r], 0.1), drawn again while F <= 0 and cut to 1;
- current-to-pbest/1 with an external archive A: v = x + F·(x_pbest − x) + F·(x_r1 − x̃_r2), pbest among
  the best max(2, round(p·N)), r1 ≠ i from the population, r2 ∉ {i, r1} from the population and A;
  binomial crossover (one coordinate always from v); a coordinate out of the box goes halfway from the
  parent to the violated bound;
- the trial replaces its parent when no worse; a strictly better trial sends the parent to the archive
  (random members leave when it holds more than round(r_arc·N)) and its F, CR and improvement
  |f(u) − f(x)| to S_F, S_CR, Δ;
- after a generation with successes, slot k (cycling) becomes the Lehmer mean of S_F weighted by Δ/ΣΔ,
  and M_CR[k] the weighted Lehmer mean of S_CR, or ⊥ when it already is or when max S_CR = 0 (SHADE 1.0
  used the weighted arithmetic mean for CR; L-SHADE's paper and code use the Lehmer mean for both);
- linear population size reduction: after each generation the worst go until
  N = round(N_init + (N_min − N_init)·nfe/max_nfe), N_min = 4.
Settings H = 6, r_arc = 2.6, p = 0.11 (the paper's tuned values).

jSO (Brest's CEC 2017 code), L-SHADE with: H = 5, memory initialised to M_F = 0.3, M_CR = 0.8 and the
last slot fixed at 0.9/0.9; CR at least 0.7 before a quarter of the budget and 0.6 before half; F at
most 0.7 before 60 %; the weighted mutation current-to-pBest-w/1 v = x + F_w·(x_pbest − x) +
F·(x_r1 − x̃_r2) with F_w = 0.7F, 0.8F, 1.2F before 20 %, before 40 %, after; p from 0.25 down to 0.125
linearly; pbest ≠ i in the first half (from iL-SHADE); each memory update averaged with the slot's old
value; archive rate 1.

Budget: N_init is the budget's population (the papers use 18·D and 25·ln(D)·√D, 540 and 466 for D = 30)
and max_nfe is population × iterations, spent exactly: iterations close every `population` evaluations
(`SearchRun.evaluate_in_iterations`), so the curve and the callbacks have the other optimizers' rhythm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from path_planner.domain.errors import BudgetError
from path_planner.domain.optimizers.base import Optimizer, SearchRun, bounce_back, uniform_population
from path_planner.domain.types import BoolArray, FloatArray, IntArray

TERMINAL = -1.0
"""M_CR's terminal value ⊥: the slot then always gives CR = 0."""


@dataclass
class Memory:
    """The success-history memory: H pairs (M_F, M_CR) and the slot the next update writes."""

    f: FloatArray
    cr: FloatArray
    pos: int = 0

    @classmethod
    def filled(cls, size: int, f: float, cr: float) -> Memory:
        """A memory of `size` slots all holding (f, cr)."""
        return cls(np.full(size, f), np.full(size, cr))


def weighted_lehmer_mean(values: FloatArray, weights: FloatArray) -> float:
    """Σ w·s² / Σ w·s."""
    return float(np.sum(weights * values * values) / np.sum(weights * values))


def update_memory(
    memory: Memory, s_f: FloatArray, s_cr: FloatArray, delta: FloatArray, *, average: bool = False
) -> None:
    """Write one generation's successes into slot `memory.pos` and advance it (nothing without successes).

    `average` is jSO's rule: the new value is the mean of the computed one and the slot's old one.
    """
    if s_f.size == 0:
        return
    total = float(np.sum(delta))
    weights = delta / total if np.isfinite(total) and total > 0 else np.full(s_f.size, 1.0 / s_f.size)
    k = memory.pos
    new_f = weighted_lehmer_mean(s_f, weights)
    terminal = float(np.max(s_cr)) == 0.0 or (not average and memory.cr[k] == TERMINAL)
    new_cr = TERMINAL if terminal else weighted_lehmer_mean(s_cr, weights)
    if average:
        new_f, new_cr = (new_f + memory.f[k]) / 2, (new_cr + memory.cr[k]) / 2
    memory.f[k], memory.cr[k] = new_f, new_cr
    memory.pos = (k + 1) % memory.f.size


def planned_size(nfe: int, max_nfe: int, n_init: int, n_min: int) -> int:
    """Linear population size reduction: round(N_init + (N_min − N_init)·nfe/max_nfe)."""
    return int(np.floor((n_min - n_init) / max_nfe * nfe + n_init + 0.5))


def sample_cauchy_f(rng: np.random.Generator, mu: FloatArray) -> FloatArray:
    """F ~ Cauchy(mu, 0.1), drawn again while <= 0 (bounded; never reached in practice), cut to 1."""
    f = mu + 0.1 * rng.standard_cauchy(mu.size)
    for _ in range(200):
        bad = f <= 0
        if not bad.any():
            break
        f[bad] = mu[bad] + 0.1 * rng.standard_cauchy(int(bad.sum()))
    res: FloatArray = np.minimum(np.where(f > 0, f, 1e-3), 1.0)
    return res


def distinct_partners(rng: np.random.Generator, n: int, pool: int) -> tuple[IntArray, IntArray]:
    """r1 ≠ i uniform in the population and r2 ∉ {i, r1} uniform in population + archive (`pool` in all)."""
    i = np.arange(n)
    r1 = (i + rng.integers(1, n, size=n)) % n
    r2 = rng.integers(0, pool - 2, size=n)
    lo, hi = np.minimum(i, r1), np.maximum(i, r1)
    r2 = r2 + (r2 >= lo)
    r2 = r2 + (r2 >= hi)
    return r1.astype(np.int64), r2.astype(np.int64)


def trim_archive(rng: np.random.Generator, archive: FloatArray, capacity: int) -> FloatArray:
    """Random members leave until the archive holds at most `capacity`."""
    if archive.shape[0] <= capacity:
        return archive
    keep = np.sort(rng.choice(archive.shape[0], size=capacity, replace=False))
    res: FloatArray = archive[keep]
    return res


@dataclass
class Generation:
    """One generation's control parameters: F, CR, the weighted F_w and pbest indices per individual."""

    f: FloatArray
    cr: FloatArray
    f_w: FloatArray
    pbest: IntArray


def trial_vectors(
    x: FloatArray,
    pool: FloatArray,
    g: Generation,
    partners: tuple[IntArray, IntArray],
    mask: BoolArray,
    box: tuple[FloatArray, FloatArray],
) -> FloatArray:
    """current-to-pbest(-w)/1: v = x + F_w·(x_pbest − x) + F·(x_r1 − pool_r2), crossed where `mask`, bounced back."""
    r1, r2 = partners
    mutant = x + g.f_w[:, None] * (x[g.pbest] - x) + g.f[:, None] * (x[r1] - pool[r2])
    return bounce_back(np.where(mask, mutant, x), x, *box)


class LSHADE(Optimizer):
    """L-SHADE: success-history adaptation, current-to-pbest/1 with archive, linear population reduction."""

    name = "lshade"
    _averages = False

    def __init__(
        self,
        memory_size: int = 6,
        archive_rate: float = 2.6,
        p_best: float = 0.11,
        min_population: int = 4,
        memory_init: tuple[float, float] = (0.5, 0.5),
    ) -> None:
        self.memory_size = memory_size
        self.archive_rate = archive_rate
        self.p_best = p_best
        self.min_population = min_population
        self.memory_init = memory_init

    def _search(self, run: SearchRun, rng: np.random.Generator, lo: FloatArray, hi: FloatArray) -> None:
        n_init = run.population
        if n_init < self.min_population:
            raise BudgetError("optimizer.population", f"{self.name} needs at least {self.min_population}")
        max_nfe = run.population * run.iterations
        memory = Memory.filled(self.memory_size, *self.memory_init)
        x = uniform_population(rng, n_init, lo, hi)
        f = run.evaluate_in_iterations(x)
        archive = np.empty((0, lo.size))
        while not run.done:
            n = x.shape[0]
            progress = run.evaluations / max_nfe
            g = self._generation(rng, memory, f, progress)
            r1, r2 = distinct_partners(rng, n, n + archive.shape[0])
            mask = rng.random(x.shape) < g.cr[:, None]
            mask[np.arange(n), rng.integers(0, lo.size, size=n)] = True
            trial = trial_vectors(x, np.concatenate([x, archive]), g, (r1, r2), mask, (lo, hi))
            f_trial = run.evaluate_in_iterations(trial)
            m = f_trial.size
            better = f_trial < f[:m]
            archive = np.concatenate([archive, x[:m][better]])
            update_memory(
                memory, g.f[:m][better], g.cr[:m][better], f[:m][better] - f_trial[better], average=self._averages
            )
            keep = f_trial <= f[:m]
            x[:m][keep] = trial[:m][keep]
            f[:m][keep] = f_trial[keep]
            size = max(planned_size(run.evaluations, max_nfe, n_init, self.min_population), self.min_population)
            if size < n:
                best = np.argsort(f, kind="stable")[:size]
                x, f = x[best], f[best]
            archive = trim_archive(rng, archive, round(self.archive_rate * x.shape[0]))

    def _generation(self, rng: np.random.Generator, memory: Memory, cost: FloatArray, progress: float) -> Generation:
        """Draw F and CR from the memory and pbest among the best p·N (L-SHADE's rules)."""
        slot = rng.integers(0, memory.f.size, size=cost.size)
        cr = sample_normal_cr(rng, memory.cr[slot])
        f = sample_cauchy_f(rng, memory.f[slot])
        return Generation(f, cr, f, pbest_draw(rng, cost, self.p_best, exclude_self=False))


def sample_normal_cr(rng: np.random.Generator, mu: FloatArray) -> FloatArray:
    """CR ~ N(mu, 0.1) clipped to [0, 1]; 0 where mu is the terminal value."""
    res: FloatArray = np.where(mu < 0, 0.0, np.clip(rng.normal(mu, 0.1), 0.0, 1.0))
    return res


def pbest_draw(rng: np.random.Generator, cost: FloatArray, p: float, *, exclude_self: bool) -> IntArray:
    """For each individual, one of the best max(2, round(p·N)); with `exclude_self`, never itself."""
    n = cost.size
    top = max(2, int(np.floor(p * n + 0.5)))
    order = np.argsort(cost, kind="stable")
    pick = rng.integers(0, top, size=n)
    if exclude_self:
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        other = rng.integers(0, top - 1, size=n)
        other = other + (other >= rank)
        pick = np.where(rank < top, other, pick)
    res: IntArray = order[pick].astype(np.int64)
    return res


class JSO(LSHADE):
    """jSO: L-SHADE with jSO's memory, F/CR schedules, weighted mutation and shrinking p."""

    name = "jso"
    _averages = True

    def __init__(
        self, memory_size: int = 5, archive_rate: float = 1.0, p_max: float = 0.25, p_min: float = 0.125
    ) -> None:
        super().__init__(memory_size, archive_rate, p_max, memory_init=(0.3, 0.8))
        self.p_min = p_min

    def _generation(self, rng: np.random.Generator, memory: Memory, cost: FloatArray, progress: float) -> Generation:
        """jSO's rules: the last slot fixed at 0.9/0.9, CR floors, F cap, F_w by stage, p shrinking."""
        slot = rng.integers(0, memory.f.size, size=cost.size)
        fixed = slot == memory.f.size - 1
        cr = sample_normal_cr(rng, np.where(fixed, 0.9, memory.cr[slot]))
        if progress < 0.5:
            cr = np.maximum(cr, 0.7 if progress < 0.25 else 0.6)
        f = sample_cauchy_f(rng, np.where(fixed, 0.9, memory.f[slot]))
        if progress < 0.6:
            f = np.minimum(f, 0.7)
        f_w = f * (0.7 if progress < 0.2 else 0.8 if progress < 0.4 else 1.2)
        p = self.p_best - (self.p_best - self.p_min) * progress
        return Generation(f, cr, f_w, pbest_draw(rng, cost, p, exclude_self=progress < 0.5))
