"""IBOA: an improved BOA for path planning (our design).

What the original BOA gets wrong here, and the fix for each:

1. Origin bias. BOA's steps r²·g* − x and r²·x_j − x_k scale positions toward the origin of the search
   space, which is meaningful only when the optimum sits near zero; here (spherical vectors: step
   lengths, elevations, headings around the start-goal direction) it never does. IBOA moves relative
   to the butterfly's own position, as current-to-best differential moves do:
   global  x + F·(e − x) + F·(x_j − x_k), with e a random member of the fragrant elite (top q);
   local   x + F·(x_j − x_k), with j the better of the two neighbours (a walk toward better scent).
2. Scale-dependent fragrance. c·I^a on raw costs (4·10³ to 10⁷ with penalties) gives step factors
   that depend on the cost's units. IBOA keeps BOA's idea that the fragrance sets the step size, but
   computes the stimulus from the rank, I = rank/(N−1) in [0, 1] (0 for the best), and F = F_min +
   (F_max − F_min)·I^a, so the best butterflies refine while the worst ones explore.
3. Fixed switch probability. p rises linearly from p_start to p_end: early on most butterflies take
   the exploratory local walk, later most follow the elite.
4. All coordinates move at once. Waypoints are largely separable sub-problems, so each trial keeps
   every coordinate from its parent with probability 1 − CR (binomial crossover, one coordinate always
   changes), which lets a good waypoint survive while another one is being improved.
5. Stagnation of the best. Each iteration a few butterflies (the worst `levy_share`) are replaced by
   Lévy flights (Mantegna, beta = 1.5) around g* with a scale shrinking from 5 % to 0.1 % of the box,
   a cheap local search around the best path that still allows rare long jumps.

6. A narrow feasible region loses to a wide one. A path through a gap between two threats is infeasible
   almost everywhere around it, so with plain comparisons every feasible trial (a detour) replaces it and
   the gap's route dies out in the first iterations, whatever its length. When the objective reports its
   constraint violations (`Scores`: the cost without its INFEASIBLE units, and how many constraints are
   violated), IBOA compares with Takahama & Sakai's epsilon level (2006, the epsilon-constrained DE):
   two candidates that both violate at most eps constraints compare by cost, otherwise the fewer
   violations win. eps starts at the violation count of the `eps_quantile` best initial butterfly and
   falls as (1 − t/T_c)^cp to 0 at `eps_until` of the run, so the end of the run is plainly feasible
   first. An unconstrained objective has no violations, and the comparisons are the plain ones.

7. Imprecise endings. With a fixed population the last iterations still spend most evaluations on
   butterflies far from the best, and IBOA finished a few tenths of a percent above L-SHADE and jSO on
   most of the benchmark suite's instances. As in L-SHADE (Tanabe & Fukunaga 2014), the population
   shrinks linearly in the evaluations spent, from N to max(4, `shrink_to`·N), the worst by the epsilon
   order leaving, so the same budget buys more generations of a smaller and better population. On the
   suite (seeds 0-4, mean rank of the medians among the six optimizers), shrink_to = 0.2 took IBOA from
   2.52 to 1.96 at 30,000 evaluations and from 2.75 to 2.12 at 100,000; shrinking to 4 ranked 1.96 and
   2.08 but doubled the generations (a 100,000-evaluation run on the SPSO scenario about 2.2 times the
   CPU instead of 1.3). A success-history memory of the step scale and crossover rate with an archive of
   replaced butterflies (L-SHADE's other two parts) was measured and left out: alone 2.58 and 2.67, and
   on top of the size reduction to 4 it made it worse (2.08 and 2.17).

8. One swarm settles in one route. At 100,000 evaluations the runs that lost to L-SHADE and jSO had settled in
   another route around the threats or blocks (the Jacksboro elevation model, urban-02), not short of precision:
   the whole swarm follows one elite, so the first good route wins. The swarm starts as `islands` sub-swarms of
   equal size, each with its own ranks, elite, neighbours and Lévy centre (an island model), each losing its
   own worst in the size reduction, until `islands_until` of the run, when they merge and the best route takes
   over. On the suite (seeds 0-9), 4 islands until 0.8 took the 100,000-evaluation mean rank from 2.27 to
   2.13 (L-SHADE 2.31, jSO 2.29) and the instances at or below L-SHADE's median from 14 to 16 of 24; a merge
   at 0.75 or 0.9 ranked 2.17 and 2.19 (15/24), fewer or more islands (2, 3, 5, 8) or a merge at 0.5 2.23-2.38,
   and a restart of all but the elite on stagnation 2.60. An island needs members to search on its own: at
   30,000 evaluations (N = 150) four islands of 37 ranked 2.67 against the single swarm's 1.98, so islands
   start with at least `island_size` (125) butterflies and end the size reduction with at least
   `MIN_POPULATION`; smaller populations get fewer islands, N = 150 one (the single swarm, unchanged). The
   islands' trials are built in one vectorised pass; only the random draws go island by island, in the order
   a single swarm draws its own.
   Those figures were on medians rounded to 0.1, with rounded ties counted as wins; the suite's own run of this
   code (unrounded) ranks it 2.33 against L-SHADE's 2.12 at 100,000 evaluations, at or below L-SHADE on 12 of 24,
   and 2.08 (first) but 14 of 24 at 30,000. bench/screen_iboa.py now compares unrounded medians and gives exactly
   those figures.

9. Screened on unrounded medians and not kept (seeds 0-9): a closing L-SHADE stage, the merged swarm's trials
   from `finish` of the run on made by current-to-pbest/1/bin with F and CR drawn from a success-history memory
   (Tanabe & Fukunaga 2014; H = 6, p = 0.11, no archive, the epsilon comparisons kept). Four of the 12
   instances IBOA loses to L-SHADE at 100,000 evaluations (three of 10 at 30,000) it loses by under 0.001 %,
   the same route found less precisely, which is what such a stage converges. finish = 0.9 ranked 2.13
   (30,000) and 2.33 (100,000), 14 and 12 of 24: the same counts, the near-ties as far apart; SPSO scenario
   20/20. finish = 0.8 ranked 2.08 with 15 of 24 at 30,000 but 2.67 with 10 of 24 at 100,000, where it stopped
   the merged islands' search too early (ridges-05 31 % above L-SHADE, 28 % above SPSO); SPSO scenario 18/20.

10. Optima on the box's edge (IBOA's own earlier rule, not BOA's: BOA clips). The best path is often a straight
   line or a few straight legs, and in the spherical encoding a waypoint that adds nothing to the path has step
   length 0, the lower bound of its box. The bounce-back rule (an out-of-box coordinate goes halfway from its
   parent to the bound, as in L-SHADE's code, and IBOA's until then) reaches a bound only geometrically, so such
   paths kept a kink of a few tenths of a percent (urban-04: 2,838.8 where the straight line, which BOA finds by
   clipping and its pull toward the origin, costs 2,827.5).
   IBOA puts an out-of-box coordinate on the bound (projection). In the suite's own run (seeds 0-9, unrounded
   medians) this took IBOA's mean rank from 2.08 to 1.35 at 30,000 evaluations and from 2.33 to 1.77 at 100,000
   (L-SHADE 2.79 and 2.27), and the instances where its median is at or below L-SHADE's from 14 to 23 and from 12
   to 17 of 24; the SPSO scenario stays 20/20 in the gap. Screened and not kept: projection for a random share of
   the coordinates, bounce-back for the rest (a share of 0.25: 1.88 and 2.15, 16 and 13 of 24; 0.5: 1.63 and 2.00,
   19 and 14), and projection for the Lévy flights only (2.00 and 2.27, 14 and 10). The price is paid where a wide
   region lies along an edge: on a toy with a wide feasible slab on the box's edge and a narrow optimum inside,
   IBOA finds the optimum in 1 of 10 runs of 50 generations (6 of 10 with bounce-back) and needs 100 for 8 of 10.
   The other optimizers keep their authors' rules; L-SHADE and jSO use bounce-back. Given projection too, L-SHADE
   ranks first at 100,000 evaluations (1.94 against IBOA's 2.13; IBOA stays first at 30,000, 1.90 against 2.21).

Acceptance stays greedy (by the epsilon-level comparison).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from path_planner.domain.optimizers.base import (
    Optimizer,
    Scores,
    SearchRun,
    uniform_population,
)
from path_planner.domain.optimizers.lshade import planned_size
from path_planner.domain.types import BoolArray, FloatArray, IntArray


def levy(rng: np.random.Generator, shape: tuple[int, ...], beta: float = 1.5) -> FloatArray:
    """Lévy-stable steps by Mantegna's algorithm."""
    num = math.gamma(1 + beta) * math.sin(math.pi * beta / 2)
    den = math.gamma((1 + beta) / 2) * beta * 2 ** ((beta - 1) / 2)
    sigma = (num / den) ** (1 / beta)
    u = rng.normal(0.0, sigma, shape)
    v = rng.normal(0.0, 1.0, shape)
    res: FloatArray = u / np.abs(v) ** (1 / beta)
    return res


def epsilon_order(scores: Scores, eps: float, group: IntArray | None = None) -> IntArray:
    """Indices from best to worst: violations up to eps count as none, then fewer violations, then cost; with
    `group`, group by group (lowest label first), each from its best to its worst."""
    level = np.where(scores.violation <= eps, 0.0, scores.violation)
    res: IntArray = np.lexsort((scores.base, level) if group is None else (scores.base, level, group))
    return res


def epsilon_better(a: Scores, b: Scores, eps: float, *, ties: bool) -> BoolArray:
    """Where a beats b at level eps (or equals it, when `ties`): by cost if both are within eps or equal in
    violations, else by violations."""
    by_cost = ((a.violation <= eps) & (b.violation <= eps)) | (a.violation == b.violation)
    cost_wins = a.base <= b.base if ties else a.base < b.base
    res: BoolArray = np.where(by_cost, cost_wins, a.violation < b.violation)
    return res


def select(keep: BoolArray, a: Scores, b: Scores) -> Scores:
    """a's scores where `keep`, else b's."""
    return Scores(
        np.where(keep, a.total, b.total), np.where(keep, a.base, b.base), np.where(keep, a.violation, b.violation)
    )


def take(scores: Scores, idx: IntArray | BoolArray) -> Scores:
    """The scores of the members at `idx`."""
    return Scores(scores.total[idx], scores.base[idx], scores.violation[idx])


@dataclass
class Draws:
    """One generation's random choices: partners j, k and elite e (swarm indices), whether each butterfly takes
    the global move, the crossover mask, and the Lévy-flown worst with their centres and steps."""

    j: IntArray
    k: IntArray
    e: IntArray
    use_global: BoolArray
    mask: BoolArray
    worst: IntArray
    centre: IntArray
    levy: FloatArray


MIN_POPULATION = 4
"""The smallest population the size reduction leaves (L-SHADE's N_min)."""


@dataclass
class Swarm:
    """Positions and their scores."""

    x: FloatArray
    s: Scores

    @property
    def size(self) -> int:
        """How many members."""
        return int(self.x.shape[0])

    def subset(self, idx: IntArray | BoolArray) -> Swarm:
        """The members at `idx` (indices or a mask)."""
        return Swarm(self.x[idx], take(self.s, idx))


def shrink_islands(swarm: Swarm, island: IntArray, size: int, eps: float) -> tuple[Swarm, IntArray]:
    """The swarm cut to `size` members and their island labels: each island loses its own worst by the epsilon
    order in turn (the worst of all first among those of the same rank in their islands), so none dies out."""
    if size >= swarm.size:
        return swarm, island
    place = np.empty(swarm.size, np.int64)
    place[epsilon_order(swarm.s, eps)] = np.arange(swarm.size)
    sizes = np.bincount(island)
    within = np.empty(swarm.size, np.int64)
    within[epsilon_order(swarm.s, eps, island)] = np.arange(swarm.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    kept = np.sort(np.lexsort((place, within))[:size])
    return swarm.subset(kept), island[kept]


def replace(swarm: Swarm, idx: IntArray, x: FloatArray, s: Scores) -> None:
    """Members `idx` of the swarm take the positions `x` and scores `s`, in place."""
    swarm.x[idx] = x
    for field in ("total", "base", "violation"):
        getattr(swarm.s, field)[idx] = getattr(s, field)


class IBOA(Optimizer):
    """Improved BOA: elite/neighbour moves, rank fragrance, adaptive p, crossover, Lévy, size reduction, islands."""

    name = "iboa"

    def __init__(
        self,
        p_start: float = 0.5,
        p_end: float = 0.9,
        f_min: float = 0.3,
        f_max: float = 0.9,
        a: float = 0.5,
        elite: float = 0.1,
        cr: float = 0.9,
        levy_share: float = 0.05,
        levy_scale: tuple[float, float] = (0.05, 0.001),
        eps_quantile: float = 0.2,
        eps_until: float = 0.5,
        eps_power: float = 3.0,
        shrink_to: float | None = 0.2,
        islands: int = 4,
        island_size: int = 125,
        islands_until: float = 0.8,
    ) -> None:
        self.p_start = p_start
        self.p_end = p_end
        self.f_min = f_min
        self.f_max = f_max
        self.a = a
        self.elite = elite
        self.cr = cr
        self.levy_share = levy_share
        self.levy_scale = levy_scale
        self.eps_quantile = eps_quantile
        self.eps_until = eps_until
        self.eps_power = eps_power
        self.shrink_to = shrink_to
        self.islands = islands
        self.island_size = island_size
        self.islands_until = islands_until

    def epsilon(self, eps0: float, progress: float) -> float:
        """The violation level treated as feasible at `progress` (0..1) of the run."""
        if progress >= self.eps_until:
            return 0.0
        return eps0 * float((1.0 - progress / self.eps_until) ** self.eps_power)

    def _search(self, run: SearchRun, rng: np.random.Generator, lo: FloatArray, hi: FloatArray) -> None:
        n_init = run.population
        max_nfe = n_init * run.iterations
        x = uniform_population(rng, n_init, lo, hi)
        # A copy: the accepted trials are written into the swarm's scores, which must not be the objective's arrays.
        swarm = Swarm(x, take(run.score_in_iterations(x), np.arange(n_init)))
        island = np.arange(n_init) % self.island_count(n_init)
        eps0 = float(np.sort(swarm.s.violation)[min(int(self.eps_quantile * n_init), n_init - 1)])
        while not run.done:
            progress = (run.evaluations - n_init) / max(max_nfe - n_init, 1)
            eps = self.epsilon(eps0, progress)
            if progress >= self.islands_until:
                island = np.zeros_like(island)
            trial = self._trials(rng, run, swarm, island, eps, progress, (lo, hi))
            scores = run.score_in_iterations(trial)
            # The run may end within the generation: only the first m trials were evaluated.
            m = scores.total.size
            keep = epsilon_better(scores, take(swarm.s, np.arange(m)), eps, ties=True)
            replace(swarm, np.flatnonzero(keep), trial[:m][keep], take(scores, keep))
            swarm, island = self._shrink(swarm, island, run, max_nfe, eps)

    def _final_size(self, n_init: int) -> int:
        """The population the size reduction ends with."""
        return n_init if self.shrink_to is None else max(MIN_POPULATION, round(self.shrink_to * n_init))

    def island_count(self, n_init: int) -> int:
        """How many islands a population of `n_init` starts as: `islands`, fewer when they would start with under
        `island_size` or end with under MIN_POPULATION members."""
        return max(1, min(self.islands, n_init // self.island_size, self._final_size(n_init) // MIN_POPULATION))

    def _shrink(
        self, swarm: Swarm, island: IntArray, run: SearchRun, max_nfe: int, eps: float
    ) -> tuple[Swarm, IntArray]:
        """Linear population size reduction (L-SHADE's): the worst by the epsilon order leave as the budget goes."""
        if self.shrink_to is None:
            return swarm, island
        n_min = self._final_size(run.population)
        size = max(planned_size(run.evaluations, max_nfe, run.population, n_min), n_min)
        return shrink_islands(swarm, island, size, eps)

    def _trials(
        self,
        rng: np.random.Generator,
        run: SearchRun,
        swarm: Swarm,
        island: IntArray,
        eps: float,
        progress: float,
        box: tuple[FloatArray, FloatArray],
    ) -> FloatArray:
        """Rank-fragrance steps toward the island's elite and along the better neighbour in the island, crossed
        over, each island's worst Lévy-flown around its best."""
        x, n = swarm.x, swarm.size
        # Island by island, each from its best to its worst by the epsilon order (lexsort is stable).
        order = epsilon_order(swarm.s, eps, island)
        sizes = np.bincount(island)
        pos = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        rank = np.empty(n)
        rank[order] = pos / np.maximum(np.repeat(sizes, sizes) - 1, 1)
        step = (self.f_min + (self.f_max - self.f_min) * rank**self.a)[:, None]
        d = self.draws(rng, island, order, sizes, x.shape[1], progress)
        swap = epsilon_better(take(swarm.s, d.k), take(swarm.s, d.j), eps, ties=False)
        j, k = np.where(swap, d.k, d.j), np.where(swap, d.j, d.k)
        diff = x[j] - x[k]
        trial = np.where(d.mask, x + step * np.where(d.use_global, (x[d.e] - x) + diff, diff), x)
        lo, hi = box
        if d.worst.size:
            scale = self.levy_scale[0] * (self.levy_scale[1] / self.levy_scale[0]) ** progress
            # An island flies around its own best, so that the islands stay in their own routes.
            centre = run.best_x if sizes.size == 1 else x[d.centre]
            trial[d.worst] = centre + scale * (hi - lo) * d.levy
        res: FloatArray = np.clip(trial, lo, hi)
        return res

    def draws(
        self, rng: np.random.Generator, island: IntArray, order: IntArray, sizes: IntArray, dim: int, progress: float
    ) -> Draws:
        """The random choices of every island, drawn island by island in the order one swarm draws its own.

        Public so that the islands' rules (partners, elite and Lévy centre from the butterfly's own island) are
        checked on their own: a whole run shows them only through its costs."""
        n = island.size
        d = Draws(
            np.empty(n, np.int64),
            np.empty(n, np.int64),
            np.empty(n, np.int64),
            np.empty((n, 1), bool),
            np.empty((n, dim), bool),
            np.empty(0, np.int64),
            np.empty(0, np.int64),
            np.empty((0, dim)),
        )
        worst, centre, steps = [], [], []
        members = np.argsort(island, kind="stable")
        start = 0
        for m in sizes.tolist():
            g = members[start : start + m]  # the island's members, in swarm order
            j = rng.integers(0, m, size=m)
            d.j[g], d.k[g] = g[j], g[(j + rng.integers(1, m, size=m)) % m]
            d.e[g] = order[start + rng.integers(0, max(1, round(self.elite * m)), size=m)]
            d.use_global[g, 0] = rng.random(m) < self.p_start + (self.p_end - self.p_start) * progress
            mask = rng.random((m, dim)) < self.cr
            mask[np.arange(m), rng.integers(0, dim, size=m)] = True
            d.mask[g] = mask
            n_levy = round(self.levy_share * m)
            if n_levy:
                worst.append(order[start + m - n_levy : start + m])
                centre.append(np.full(n_levy, order[start]))
                steps.append(levy(rng, (n_levy, dim)))
            start += m
        if worst:
            d.worst, d.centre, d.levy = np.concatenate(worst), np.concatenate(centre), np.concatenate(steps)
        return d
