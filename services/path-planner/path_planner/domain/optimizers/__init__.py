"""Optimizers behind one interface (`Optimizer.minimize`), plus the grid A* reference planner."""

from __future__ import annotations

from path_planner.domain.optimizers.base import Budget, Optimizer, OptimizeResult, Scores, SearchRun
from path_planner.domain.optimizers.boa import BOA
from path_planner.domain.optimizers.iboa import IBOA
from path_planner.domain.optimizers.lshade import JSO, LSHADE
from path_planner.domain.optimizers.pso import PSO, SPSO

__all__ = [
    "BOA",
    "IBOA",
    "JSO",
    "LSHADE",
    "PSO",
    "SPSO",
    "Budget",
    "OptimizeResult",
    "Optimizer",
    "Scores",
    "SearchRun",
    "make_optimizer",
]


def make_optimizer(name: str) -> Optimizer:
    """A fresh optimizer with its default settings: boa, iboa, jso, lshade, pso or spso."""
    classes: dict[str, type[Optimizer]] = {
        "boa": BOA,
        "iboa": IBOA,
        "jso": JSO,
        "lshade": LSHADE,
        "pso": PSO,
        "spso": SPSO,
    }
    try:
        return classes[name]()
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {sorted(classes)}") from None
