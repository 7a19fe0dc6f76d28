"""Real job results, made by the services' own domain code from their example files and dumped as the API sends
them (`GET /jobs/{id}/result`), for tests of what reads a result."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from path_planner.jobs import completed_message as plan_completed
from path_planner.jobs import load_spec_file
from path_planner.jobs import run_job as run_plan
from quartet_contracts.schemas.training import TrainingJobSpec
from quartet_shared.safe_yaml import safe_load
from training_worker.jobs import completed_message as training_completed
from training_worker.jobs import run_job as run_training

REPO = Path(__file__).resolve().parents[2]
TRAINING_EXAMPLES = REPO / "services" / "training-worker" / "examples"
SCENARIOS = REPO / "services" / "path-planner" / "scenarios"


@cache
def training_result(example: str = "polynomial_overfitting_sweep.yaml") -> dict[str, Any]:
    """A training example run to completion (a closed-form λ sweep by default: well under a second)."""
    spec = TrainingJobSpec.model_validate(safe_load((TRAINING_EXAMPLES / example).read_text(encoding="utf-8")))
    outcome = run_training(spec)
    return training_completed("job-training", outcome, plots=["fit", "validation_curve"]).model_dump(mode="json")


@cache
def planning_result() -> dict[str, Any]:
    """The gaussian-peaks scenario on a small budget, compared with SPSO and A*, without drawing its figures."""
    spec = load_spec_file(SCENARIOS / "gaussian-peaks.yaml")
    small = spec.model_copy(
        update={"optimizer": spec.optimizer.model_copy(update={"population": 20, "iterations": 10})}
    )
    outcome = run_plan(small, render_plots=False)
    return plan_completed("job-planning", outcome).model_dump(mode="json")
