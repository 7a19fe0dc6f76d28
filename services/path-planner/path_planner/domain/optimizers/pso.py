"""Particle swarm optimisation with the SPSO paper's settings; SPSO is this PSO in the spherical encoding.

Settings from Phung & Ha's code: inertia w = 1 damped by 0.98 per iteration, c1 = c2 = 1.5, velocity
limited to ±0.5·(upper − lower), and velocity mirroring (a component that leaves the box has its
velocity reversed before the position is clamped). Velocities start at zero.
"""

from __future__ import annotations

import numpy as np

from path_planner.domain.optimizers.base import Optimizer, SearchRun, uniform_population
from path_planner.domain.types import FloatArray


class PSO(Optimizer):
    """Global-best PSO with damped inertia and velocity mirroring."""

    name = "pso"

    def __init__(
        self, w: float = 1.0, w_damp: float = 0.98, c1: float = 1.5, c2: float = 1.5, v_max: float = 0.5
    ) -> None:
        self.w = w
        self.w_damp = w_damp
        self.c1 = c1
        self.c2 = c2
        self.v_max = v_max

    def _search(self, run: SearchRun, rng: np.random.Generator, lo: FloatArray, hi: FloatArray) -> None:
        n = run.population
        x = uniform_population(rng, n, lo, hi)
        v = np.zeros_like(x)
        v_lim = self.v_max * (hi - lo)
        f = run.evaluate(x)
        pbest = x.copy()
        pcost = f.copy()
        w = self.w
        while run.end_iteration():
            r1 = rng.random(x.shape)
            r2 = rng.random(x.shape)
            v = w * v + self.c1 * r1 * (pbest - x) + self.c2 * r2 * (run.best_x - x)
            v = np.clip(v, -v_lim, v_lim)
            x = x + v
            outside = (x < lo) | (x > hi)
            v = np.where(outside, -v, v)
            x = np.clip(x, lo, hi)
            f = run.evaluate(x)
            better = f < pcost
            pbest[better] = x[better]
            pcost[better] = f[better]
            w *= self.w_damp


class SPSO(PSO):
    """PSO run in the spherical-vector encoding (the planner pairs it with that encoding)."""

    name = "spso"
