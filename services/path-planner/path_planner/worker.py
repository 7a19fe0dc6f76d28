"""The planning kind of job for the kernel's job service, and the adapter that runs one planning job."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import get_args

from quartet_contracts.schemas.planning import (
    CancelPlan,
    GaussianTerrain,
    OptimizerName,
    PlanCancelled,
    PlanCompleted,
    PlanFailed,
    PlanningJobSpec,
    PlanProgressed,
    PlanRequested,
    normalized_spec_hash,
    split_plan_result,
)
from quartet_shared.jobservice import JobKind, JobOutcome, JobRejected, JobTopics, OnProgress, Progress, ShouldStop

from path_planner.domain.errors import PlanningError
from path_planner.jobs import (
    TerrainLoader,
    build_scenario,
    completed_message,
    plan_hash,
    planned_iterations,
    run_job,
    run_order,
)

KIND = "planning"


def _finite(value: float | None) -> float:
    # Events carry finite numbers only; an unbounded cost is reported as the largest float.
    if value is None or not math.isfinite(value):
        return sys.float_info.max
    return value


def optimizer_name(label: str | None) -> OptimizerName | None:
    """The optimizer a progress label names, if it names one."""
    return next((name for name in get_args(OptimizerName) if name == label), None)


def evaluations_needed(spec: PlanningJobSpec) -> int:
    """Objective evaluations a job spends over every run it makes (A* costs none)."""
    return sum(spec.optimizer.evaluations for name in run_order(spec) if name != "astar")


def job_hash(spec: PlanningJobSpec, terrain_loader: TerrainLoader) -> str:
    """The results-cache key of a job whose terrain comes through `terrain_loader` (see `plan_hash`)."""
    source = spec.scenario.terrain
    if isinstance(source, GaussianTerrain):
        return normalized_spec_hash(spec)
    return plan_hash(spec, terrain_loader(source))


def planning_kind(
    max_evaluations: int, topics: JobTopics | None = None, terrain_loader: TerrainLoader | None = None
) -> JobKind:
    """The planning job kind: topics, schemas and event builders.

    Its admission check (run by the API before 202 and by the worker before running) enforces the service's
    evaluation limit and, given a terrain loader, builds the scenario, so that an unreadable terrain file, bounds
    beyond the terrain or a start inside a no-fly box are refused (422 at the API, dead letter on Kafka).
    """

    def check(spec: PlanningJobSpec) -> None:
        needed = evaluations_needed(spec)
        if needed > max_evaluations:
            raise JobRejected(
                "optimizer.iterations",
                f"the job needs {needed:,} evaluations, over this service's limit of {max_evaluations:,}",
            )
        if terrain_loader is not None:
            try:
                build_scenario(spec.scenario, terrain_loader)
            except PlanningError as exc:
                raise JobRejected(exc.field, exc.message) from exc

    return JobKind(
        name=KIND,
        topics=topics or JobTopics.of(KIND),
        spec_model=PlanRequested,
        progress_model=PlanProgressed,
        completed_model=PlanCompleted,
        failed_model=PlanFailed,
        cancelled_model=PlanCancelled,
        spec_hash=normalized_spec_hash if terrain_loader is None else lambda spec: job_hash(spec, terrain_loader),
        progress_event=lambda job_id, p: PlanProgressed(
            job_id=job_id,
            optimizer=optimizer_name(p.label),
            iteration=p.iteration,
            iterations=max(1, p.total),
            progress=min(1.0, max(0.0, p.fraction)),
            best_cost=_finite(p.best),
        ),
        failed_event=lambda job_id, exc: PlanFailed(job_id=job_id, error=str(exc), field=exc.field, retryable=False),
        cancelled_event=lambda job_id, p: PlanCancelled(
            job_id=job_id,
            iteration=p.iteration if p is not None else 0,
            best_cost=_finite(p.best) if p is not None and p.best is not None else None,
        ),
        cancel_command=lambda job_id: CancelPlan(job_id=job_id),
        check_spec=check,
        split_result=split_plan_result,
    )


@dataclass(frozen=True)
class PlanJobRunner:
    """Runs one planning job for the job service: progress out, cancellation in, input errors as rejections."""

    terrain_loader: TerrainLoader | None = None
    max_evaluations: int | None = None
    render_plots: bool = True

    def __call__(
        self, job_id: str, spec: PlanningJobSpec, on_progress: OnProgress, should_stop: ShouldStop
    ) -> JobOutcome:
        """Plan; the outcome holds the PlanCompleted event and the figures, or says it was cancelled."""
        total = planned_iterations(spec)
        last: list[Progress] = []

        def on_iteration(optimizer: str, iteration: int, best: float, fraction: float) -> None:
            progress = Progress(iteration, total, fraction, best, label=optimizer)
            last[:] = [progress]
            on_progress(progress)

        try:
            outcome = run_job(
                spec,
                terrain_loader=self.terrain_loader,
                on_iteration=on_iteration,
                should_stop=should_stop,
                max_evaluations=self.max_evaluations,
                render_plots=self.render_plots,
            )
        except PlanningError as exc:
            raise JobRejected(exc.field, exc.message) from exc
        final = last[-1] if last else None
        if outcome.cancelled:
            return JobOutcome(None, cancelled=True, last=final)
        plots = {name.removesuffix(".png"): data for name, data in outcome.plots.items()}
        completed = completed_message(job_id, outcome, plot_names=sorted(plots))
        return JobOutcome(completed, plots, last=final)
