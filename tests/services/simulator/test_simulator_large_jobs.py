"""The bundled scenarios' large-result jobs: present in every pool, drawn by the plans, and truly large."""

from __future__ import annotations

import json

import pytest
import yaml
from path_planner.worker import PlanJobRunner
from quartet_contracts.schemas.planning import PlanningJobSpec
from quartet_contracts.schemas.training import TrainingJobSpec
from simulator.bootstrap import bundled_scenarios
from simulator.domain.plan import build_plan
from simulator.domain.scenario import PlanningAction, TrainingAction
from simulator.scenario_io import load_scenario
from training_worker.worker import TrainJobRunner

BROKER_LIMIT = 1024 * 1024


def _large_drawn(name: str) -> dict[str, int]:
    scenario = load_scenario(bundled_scenarios()[name])
    drawn: dict[str, int] = {}
    for job in build_plan(scenario).jobs:
        action = scenario.mix[job.mix_index]
        assert isinstance(action, TrainingAction | PlanningAction)
        if action.pool[job.pool_index].large:
            drawn[job.kind] = drawn.get(job.kind, 0) + 1
    return drawn


def test_every_bundled_job_scenario_draws_large_results_of_both_kinds() -> None:
    assert _large_drawn("chaos-short") == {"training": 2, "planning": 1}
    assert _large_drawn("chaos") == {"training": 2, "planning": 3}
    assert _large_drawn("demo") == {"training": 2, "planning": 1}


def test_the_large_training_job_has_a_result_over_the_brokers_limit() -> None:
    path = bundled_scenarios()["chaos-short"].parent / "jobs" / "training-large.yaml"
    spec = TrainingJobSpec.model_validate(yaml.safe_load(path.read_text()))
    outcome = TrainJobRunner(render_plots=False)("large", spec, lambda _p: None, lambda: False)
    assert outcome.completed is not None
    assert len(json.dumps(outcome.completed.model_dump(mode="json"))) > BROKER_LIMIT


@pytest.mark.slow
def test_the_large_planning_job_has_a_result_over_the_brokers_limit() -> None:
    """Running it costs about a minute of CPU, so it runs at a tenth of its iterations: everything but the four
    fitness curves stays the same size, and the curves, one point per iteration, grow tenfold."""
    path = bundled_scenarios()["chaos-short"].parent / "jobs" / "planning-large.yaml"
    raw = yaml.safe_load(path.read_text())
    iterations = raw["optimizer"]["iterations"]
    raw["optimizer"]["iterations"] = iterations // 10
    outcome = PlanJobRunner(render_plots=False)(
        "large", PlanningJobSpec.model_validate(raw), lambda _p: None, lambda: False
    )
    assert outcome.completed is not None
    result = outcome.completed.model_dump(mode="json")
    curves = [result["fitness_curve"], *(run["fitness_curve"] for run in result["comparison"])]
    assert [len(c) for c in curves] == [iterations // 10] * 4
    curve_bytes = sum(len(json.dumps(c)) for c in curves)
    assert len(json.dumps(result)) + 9 * curve_bytes > BROKER_LIMIT
