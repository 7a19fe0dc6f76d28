"""`quartet submit --wait`'s summary: real training and planning results read through the contract's models, and a
failed job's problem, each through the whole command against an in-process job API."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI
from fastapi.responses import Response
from quartet_contracts.schemas.planning import PlanCompleted
from quartet_contracts.schemas.training import TrainingCompleted, TrainingFailed
from quartet_shared.jobs import JobRecord
from quartet_shared.testing.fakes import FakeJobStore
from quartet_tools import cli
from quartet_tools.summary import SWEEP_ROWS, failure_message, number, result_tables
from rich.console import Console
from training_worker.settings import TrainingSettings
from training_worker.worker import TrainingKind
from typer.testing import CliRunner

from tests.support.results import planning_result, training_result
from tests.support.served import Served

PNG = b"\x89PNG\r\n\x1a\n"


def rendered(kind: str, result: dict[str, Any]) -> str:
    """The summary as a terminal wide enough for it shows it."""
    console = Console(record=True, width=200, file=io.StringIO())
    for table in result_tables(kind, result):
        console.print(table)
    return console.export_text()


def row(text: str, label: str) -> list[str]:
    """The cells of the table row starting with `label`."""
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line) if c.strip()]
        if cells and cells[0] == label:
            return cells
    raise AssertionError(f"no row {label!r} in:\n{text}")


def job_api_double(finish: Callable[[FakeJobStore, str], JobRecord]) -> FastAPI:
    """The job API's answers for one job: queued when posted, then whatever `finish` makes of it."""
    store = FakeJobStore()
    api = FastAPI()

    @api.post("/jobs", status_code=202)
    def submit(spec: dict[str, Any]) -> dict[str, Any]:
        record, _ = store.create("job-1", "any", spec)
        return {"id": record.id, "status": record.status.value}

    @api.get("/jobs/{job_id}")
    def status(job_id: str) -> dict[str, Any]:
        return finish(store, job_id).public().model_dump(mode="json")

    @api.get("/jobs/{job_id}/result")
    def result(job_id: str) -> dict[str, Any] | None:
        return store.result(job_id)

    @api.get("/jobs/{job_id}/plots/{name}.png")
    def plot(job_id: str, name: str) -> Response:
        return Response(PNG, media_type="image/png")

    return api


def submit(tmp_path: Path, command: str, api: FastAPI, *extra: str) -> Any:
    """`quartet submit <command> job.yaml --wait` against the double, served on loopback."""
    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump({"seed": 1}))
    args = ["submit", command, str(spec), "--wait", "--poll-interval", "0.05", "--out", str(tmp_path / "out")]
    option = "--training-url" if command == "training" else "--planning-url"
    with Served(api) as served:
        return CliRunner().invoke(cli.app, [*args, option, served.url, *extra], env={"COLUMNS": "200"})


def succeeding(result: dict[str, Any]) -> Callable[[FakeJobStore, str], JobRecord]:
    def finish(store: FakeJobStore, job_id: str) -> JobRecord:
        store.mark_running(job_id)
        return store.complete(job_id, result)

    return finish


def test_a_training_sweep_shows_its_metrics_and_best_lambda_not_its_raw_fields() -> None:
    result = training_result()
    done = TrainingCompleted.model_validate(result)
    assert done.sweep is not None
    text = rendered("training", result)
    assert row(text, "best λ")[1] == f"{done.sweep.best_lam:g} (by kfold, 5 folds)"
    assert row(text, "model")[1] == "polynomial"
    # Each metric beside the λ = 0 reference's, train and validation.
    assert row(text, "r2")[1:] == [
        number(done.metrics["train_r2"]),
        number(done.metrics["val_r2"]),
        number(done.reference_metrics["train_r2"]),
        number(done.reference_metrics["val_r2"]),
    ]
    assert row(text, "mse")[2] == number(done.metrics["val_mse"])
    # The validation curve, its best λ marked; every λ shown since the grid is short.
    assert row(text, f"{done.sweep.best_lam:g}")[-1] == "best"
    assert [r for r in (row(text, f"{p.lam:g}") for p in done.sweep.points) if r[-1] == "best"] == [
        row(text, f"{done.sweep.best_lam:g}")
    ]
    for raw in ("nested field", "item(s)", "history", "class_names", "feature_names"):
        assert raw not in text


def test_a_long_sweep_shows_the_best_lambdas_neighbourhood_and_says_so() -> None:
    result = training_result("ridge_diabetes_loo.yaml")
    done = TrainingCompleted.model_validate(result)
    assert done.sweep is not None and len(done.sweep.points) > SWEEP_ROWS
    text = rendered("training", result)
    assert f"{SWEEP_ROWS} of {len(done.sweep.points)} λ around the best" in text
    assert row(text, f"{done.sweep.best_lam:g}")[-1] == "best"
    assert row(text, "best λ")[1] == f"{done.sweep.best_lam:g} (by loo, {done.sweep.folds} folds)"


def test_a_single_classifier_run_names_its_classes_and_lambda() -> None:
    result = training_result("softmax_iris.yaml")
    done = TrainingCompleted.model_validate(result)
    text = rendered("training", result)
    assert row(text, "classes")[1] == ", ".join(done.class_names)
    assert row(text, "λ")[1] == f"{done.lam:g}"
    assert row(text, "accuracy")[2] == number(done.metrics["val_accuracy"])
    assert "best λ" not in text and "λ sweep" not in text


def test_a_plan_shows_its_cost_feasibility_clearance_and_each_compared_optimizer() -> None:
    result = planning_result()
    done = PlanCompleted.model_validate(result)
    text = rendered("planning", result)
    assert row(text, "best cost")[1] == number(done.best_cost)
    assert row(text, "feasible")[1] == ("yes" if done.feasible else "no")
    assert row(text, "min clearance")[1] == number(done.min_clearance, " m")
    assert row(text, "evaluations")[1] == f"{done.evaluations:,}"
    assert row(text, "optimizer")[1] == f"{done.optimizer} ({done.encoding})"
    assert [c.optimizer for c in done.comparison] == ["spso", "boa", "astar"]
    for run in done.comparison:
        assert row(text, run.optimizer)[1:4] == [
            number(run.best_cost),
            "yes" if run.feasible else "no",
            number(run.min_clearance, " m"),
        ]
    for raw in ("item(s)", "fitness_curve", "waypoints 8 item"):
        assert raw not in text


def test_a_result_this_cli_cannot_read_falls_back_to_its_scalars() -> None:
    result = {**training_result(), "added_by_a_newer_service": 1}
    text = rendered("training", result)
    assert row(text, "lam")[1] == number(result["lam"])
    assert row(text, "metrics.val_r2")[1] == number(result["metrics"]["val_r2"])
    assert "not a result this CLI knows" in text and "--json" in text


def test_submit_wait_prints_the_summary_and_json_keeps_the_whole_result(tmp_path: Path) -> None:
    result = training_result()
    shown = submit(tmp_path, "training", job_api_double(succeeding(result)))
    assert shown.exit_code == 0, shown.output
    assert row(shown.stdout, "best λ")[1].startswith(f"{result['sweep']['best_lam']:g} ")
    assert "nested field" not in shown.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["fit.png", "validation_curve.png"]

    whole = submit(tmp_path, "training", job_api_double(succeeding(result)), "--json")
    assert whole.exit_code == 0, whole.output
    assert json.loads(whole.stdout)["result"] == result

    plan = submit(tmp_path, "plan", job_api_double(succeeding(planning_result())))
    assert plan.exit_code == 0, plan.output
    assert row(plan.stdout, "feasible")[1] in ("yes", "no")


def test_a_failed_job_prints_its_problems_title_and_detail_and_exits_1(tmp_path: Path) -> None:
    """The problem the training kind makes of a real failed event, as the job API stores and shows it."""
    event = TrainingFailed(job_id="job-1", error_type="Diverged", detail="the loss became NaN at epoch 3", field="lr")
    problem = TrainingKind(TrainingSettings()).problem(event)

    def fail(store: FakeJobStore, job_id: str) -> JobRecord:
        store.mark_running(job_id)
        return store.fail(job_id, problem)

    failed = submit(tmp_path, "training", job_api_double(fail))
    assert failed.exit_code == 1
    expected = "training job job-1 failed: Training failed: Diverged — lr: the loss became NaN at epoch 3"
    assert f"quartet: error: {expected}\n" in failed.stderr
    assert "Traceback" not in failed.output
    as_json = submit(tmp_path, "training", job_api_double(fail), "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["job"]["problem"]["detail"] == "lr: the loss became NaN at epoch 3"


def test_a_job_that_ended_without_a_problem_says_how_it_ended() -> None:
    cancelled = failure_message("planning", {"id": "j", "status": "cancelled", "problem": None})
    assert cancelled == "planning job j cancelled"
    untitled = failure_message("planning", {"id": "j", "status": "failed", "problem": {"detail": "out of budget"}})
    assert untitled == "planning job j failed: out of budget"
