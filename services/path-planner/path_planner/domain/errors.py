"""Domain errors: every one names the input that is wrong."""

from __future__ import annotations


class PlanningError(ValueError):
    """A planning input is invalid; `field` names it (dotted, as in the job spec)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ScenarioError(PlanningError):
    """The scenario (map, threats, start, goal, band) is inconsistent."""


class TerrainError(PlanningError):
    """A terrain source cannot be read or is not a usable heightmap."""


class BudgetError(PlanningError):
    """An optimizer budget (population, iterations, evaluations) is not usable."""
