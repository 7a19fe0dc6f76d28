"""The Butterfly Optimization Algorithm as Arora & Singh (2019, Soft Computing 23:715-734) define it.

Each butterfly i emits fragrance f_i = c·I_i^a (sensory modality c = 0.01, power exponent a = 0.1).
With switch probability p = 0.8 it takes the global step x_i + (r²·g* − x_i)·f_i toward the best
butterfly g*, else the local step x_i + (r²·x_j − x_k)·f_i with two random butterflies j ≠ k
(r uniform in [0, 1], one draw per butterfly). The new position is clipped to the box and kept only if
it is no worse (greedy acceptance, `<=` as in the authors' code). After each iteration c grows as in
the authors' code: c ← c + 0.025/(c·T), T the number of iterations.

Stimulus intensity for minimisation: the authors' code uses the objective value itself, I = f(x)
(our costs are non-negative), so worse butterflies emit more fragrance and take larger steps; that is
the default ("cost"). The alternative "inverse" uses I = 1/(1 + f(x)).

Two documented implementation choices: the population moves synchronously (all butterflies step from
the same population and g*, which vectorises the update; the authors' loop updates one butterfly at a
time), and the fragrance comes from the butterfly's current fitness (the authors' code re-evaluates the
last trial position for it, a second objective call per butterfly that the paper's equations do not need).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from path_planner.domain.optimizers.base import Optimizer, SearchRun, uniform_population
from path_planner.domain.types import BoolArray, FloatArray, IntArray

Intensity = Literal["cost", "inverse"]


def fragrance(cost: FloatArray, c: float, a: float, intensity: Intensity = "cost") -> FloatArray:
    """f = c·I^a with I the stimulus intensity derived from the cost."""
    stimulus = np.maximum(cost, 0.0) if intensity == "cost" else 1.0 / (1.0 + np.maximum(cost, 0.0))
    res: FloatArray = c * stimulus**a
    return res


def next_sensory_modality(c: float, iterations: int) -> float:
    """The authors' update c ← c + 0.025/(c·T)."""
    return c + 0.025 / (c * iterations)


@dataclass(frozen=True)
class BoaDraws:
    """The random numbers of one BOA iteration: r per butterfly, global/local choice, neighbours j ≠ k."""

    r: FloatArray
    use_global: BoolArray
    j: IntArray
    k: IntArray


def draw(rng: np.random.Generator, n: int, p: float) -> BoaDraws:
    """Draw one iteration's random numbers for `n` butterflies, in a fixed order."""
    r = rng.random(n)
    use_global = rng.random(n) < p
    j = rng.integers(0, n, size=n)
    k = (j + rng.integers(1, n, size=n)) % n
    return BoaDraws(r, use_global, j.astype(np.int64), k.astype(np.int64))


def boa_move(x: FloatArray, frag: FloatArray, best: FloatArray, d: BoaDraws) -> FloatArray:
    """Eq. (2) global step x + (r²·g* − x)·f and Eq. (3) local step x + (r²·x_j − x_k)·f."""
    r2 = (d.r * d.r)[:, None]
    global_step = r2 * best[None, :] - x
    local_step = r2 * x[d.j] - x[d.k]
    res: FloatArray = x + np.where(d.use_global[:, None], global_step, local_step) * frag[:, None]
    return res


def greedy(x: FloatArray, f: FloatArray, x_new: FloatArray, f_new: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Keep each new position only when it is no worse."""
    keep = f_new <= f
    return np.where(keep[:, None], x_new, x), np.where(keep, f_new, f)


class BOA(Optimizer):
    """The original BOA (p = 0.8, c = 0.01, a = 0.1)."""

    name = "boa"

    def __init__(self, p: float = 0.8, c: float = 0.01, a: float = 0.1, intensity: Intensity = "cost") -> None:
        self.p = p
        self.c = c
        self.a = a
        self.intensity: Intensity = intensity

    def _search(self, run: SearchRun, rng: np.random.Generator, lo: FloatArray, hi: FloatArray) -> None:
        x = uniform_population(rng, run.population, lo, hi)
        f = run.evaluate(x)
        c = self.c
        while run.end_iteration():
            frag = fragrance(f, c, self.a, self.intensity)
            x_new = np.clip(boa_move(x, frag, run.best_x, draw(rng, run.population, self.p)), lo, hi)
            x, f = greedy(x, f, x_new, run.evaluate(x_new))
            c = next_sensory_modality(c, run.iterations)
