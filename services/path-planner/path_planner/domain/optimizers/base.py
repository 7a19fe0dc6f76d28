"""The optimizer interface: a budget, a seed, progress and cancel callbacks, a uniform result.

Budget accounting: the initial population is iteration 1, so an optimizer with population P and T
iterations spends exactly P·T objective evaluations and its fitness curve has T entries (best cost so
far after each iteration). `max_evaluations`, when given, lowers T to what fits in it.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from path_planner.domain.errors import BudgetError
from path_planner.domain.types import FloatArray


@dataclass(frozen=True)
class Scores:
    """Per-vector costs, each split into its unconstrained part and the count of violated constraints."""

    total: FloatArray
    base: FloatArray
    violation: FloatArray


Objective = Callable[[FloatArray], FloatArray | Scores]
OnIteration = Callable[[int, float, float], None]
ShouldStop = Callable[[], bool]


@dataclass(frozen=True)
class Budget:
    """Population, iterations and an optional cap on evaluations; validated on construction."""

    population: int
    iterations: int
    max_evaluations: int | None = None

    def __post_init__(self) -> None:
        if self.population < 2:
            raise BudgetError("optimizer.population", f"must be at least 2, got {self.population}")
        if self.iterations < 1:
            raise BudgetError("optimizer.iterations", f"must be positive, got {self.iterations}")
        if self.max_evaluations is not None and self.max_evaluations < self.population:
            raise BudgetError(
                "optimizer.max_evaluations",
                f"{self.max_evaluations} cannot pay for one population of {self.population}",
            )

    @property
    def generations(self) -> int:
        """Iterations that fit in the budget, the initial population included."""
        if self.max_evaluations is None:
            return self.iterations
        return min(self.iterations, self.max_evaluations // self.population)


@dataclass(frozen=True)
class OptimizeResult:
    """Best vector and cost, the per-iteration curve, evaluations spent, wall time, and whether cancelled."""

    best_x: FloatArray
    best_cost: float
    curve: FloatArray
    evaluations: int
    runtime_s: float
    cancelled: bool


class SearchRun:
    """Bookkeeping shared by the optimizers: counts evaluations, tracks the best, drives the callbacks."""

    def __init__(
        self,
        objective: Objective,
        budget: Budget,
        on_iteration: OnIteration | None,
        should_stop: ShouldStop | None,
    ) -> None:
        self._objective = objective
        self.population = budget.population
        self.iterations = budget.generations
        self._on_iteration = on_iteration
        self._should_stop = should_stop
        self.evaluations = 0
        self.best_x: FloatArray = np.empty(0)
        self.best_cost = float("inf")
        self.curve: list[float] = []
        self.cancelled = False
        self.done = False
        self._t0 = time.perf_counter()

    @property
    def iteration(self) -> int:
        """Iterations completed so far."""
        return len(self.curve)

    def evaluate(self, vectors: FloatArray) -> FloatArray:
        """Objective values of a population; updates the best so far."""
        return self.score(vectors).total

    def score(self, vectors: FloatArray) -> Scores:
        """Objective values with their split (an unconstrained objective: base = total, no violation)."""
        scores = self._call(vectors)
        self._count(vectors, scores)
        return scores

    def _call(self, vectors: FloatArray) -> Scores:
        """The objective's scores, nothing counted."""
        out = self._objective(vectors)
        if isinstance(out, Scores):
            return out
        f = np.asarray(out, dtype=np.float64)
        return Scores(f, f, np.zeros_like(f))

    def _count(self, vectors: FloatArray, scores: Scores) -> None:
        """Count the evaluations of `vectors` and keep the best of them."""
        f = scores.total
        self.evaluations += f.shape[0]
        i = int(np.argmin(f))
        if f[i] < self.best_cost or self.best_x.size == 0:
            self.best_cost = float(f[i])
            self.best_x = np.array(vectors[i], dtype=np.float64)

    def end_iteration(self) -> bool:
        """Close an iteration (curve, progress callback); True when another one should run."""
        self.curve.append(self.best_cost)
        it = len(self.curve)
        if self._on_iteration is not None:
            self._on_iteration(it, self.best_cost, it / self.iterations)
        if it >= self.iterations:
            self.done = True
        elif self._should_stop is not None and self._should_stop():
            self.cancelled = self.done = True
        return not self.done

    def evaluate_in_iterations(self, vectors: FloatArray) -> FloatArray:
        """Evaluate `vectors` in order, closing an iteration at every `population` evaluations.

        For optimizers whose generations do not match the budget's population (a shrinking population):
        the curve, the callbacks and cancellation keep the same rhythm as everyone else's. Returns the
        values of the vectors evaluated, fewer than given when the run ends on the way.
        """
        return self.score_in_iterations(vectors).total

    def score_in_iterations(self, vectors: FloatArray) -> Scores:
        """`evaluate_in_iterations` with the scores' split.

        One objective call for all the vectors the budget still pays for (a call's fixed cost is most of a
        small population's), then counted iteration by iteration; after a cancellation the rest are dropped.
        """
        if self.done:
            return concat_scores([])
        vectors = vectors[: self.population * self.iterations - self.evaluations]
        scores = self._call(vectors)
        start = 0
        while start < vectors.shape[0] and not self.done:
            end = min(start + self.population * (self.iteration + 1) - self.evaluations, vectors.shape[0])
            self._count(vectors[start:end], take_rows(scores, slice(start, end)))
            start = end
            if self.evaluations == self.population * (self.iteration + 1):
                self.end_iteration()
        return scores if start == vectors.shape[0] else take_rows(scores, slice(0, start))

    def result(self) -> OptimizeResult:
        """The outcome so far."""
        return OptimizeResult(
            best_x=self.best_x,
            best_cost=self.best_cost,
            curve=np.array(self.curve, dtype=np.float64),
            evaluations=self.evaluations,
            runtime_s=time.perf_counter() - self._t0,
            cancelled=self.cancelled,
        )


class Optimizer(ABC):
    """A population-based minimiser over the box lower..upper."""

    name: str = "optimizer"

    def minimize(
        self,
        objective: Objective,
        lower: FloatArray,
        upper: FloatArray,
        budget: Budget,
        *,
        seed: int,
        on_iteration: OnIteration | None = None,
        should_stop: ShouldStop | None = None,
    ) -> OptimizeResult:
        """Minimise `objective` ((N, D) -> (N,)) within the budget; reproducible for a given seed."""
        lo = np.asarray(lower, dtype=np.float64)
        hi = np.asarray(upper, dtype=np.float64)
        if lo.shape != hi.shape or lo.ndim != 1 or np.any(lo > hi):
            raise ValueError("lower and upper must be 1-D arrays of equal length with lower <= upper")
        run = SearchRun(objective, budget, on_iteration, should_stop)
        self._search(run, np.random.default_rng(seed), lo, hi)
        return run.result()

    @abstractmethod
    def _search(self, run: SearchRun, rng: np.random.Generator, lo: FloatArray, hi: FloatArray) -> None:
        """Run the iterations through `run` until it says stop."""


def take_rows(scores: Scores, rows: slice) -> Scores:
    """The scores of a range of rows."""
    return Scores(scores.total[rows], scores.base[rows], scores.violation[rows])


def concat_scores(parts: list[Scores]) -> Scores:
    """The scores of several populations, one after the other (empty for none)."""
    if not parts:
        return Scores(np.empty(0), np.empty(0), np.empty(0))
    return Scores(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("total", "base", "violation")))


def uniform_population(rng: np.random.Generator, n: int, lo: FloatArray, hi: FloatArray) -> FloatArray:
    """`n` points drawn uniformly in the box."""
    res: FloatArray = lo + rng.random((n, lo.size)) * (hi - lo)
    return res


def bounce_back(trial: FloatArray, parent: FloatArray, lo: FloatArray, hi: FloatArray) -> FloatArray:
    """Coordinates outside the box go halfway from the parent to the violated bound."""
    res: FloatArray = np.where(trial < lo, 0.5 * (parent + lo), np.where(trial > hi, 0.5 * (parent + hi), trial))
    return res
