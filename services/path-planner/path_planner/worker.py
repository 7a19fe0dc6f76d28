"""The planning kind of job for the kernel's job service, and the adapter that runs one planning job."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any, get_args

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
from quartet_shared.jobkind import (
    JobKind,
    JobOutcome,
    JobRejected,
    JobTopics,
    OnProgress,
    Progress,
    ShouldStop,
    problem_body,
)

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


class PlanningKind(JobKind[PlanRequested, PlanProgressed, PlanCompleted, PlanFailed]):
    """The planning job kind: topics, schemas, event builders and the admission check.

    Its admission check (run by the API before 202 and by the worker before running) is the one place the
    service's evaluation limit is enforced and, given a terrain loader, builds the scenario, so that an
    unreadable terrain file, bounds beyond the terrain or a start inside a no-fly box are refused (422 at the
    API, dead letter on Kafka).
    """

    name = KIND
    spec_model = PlanRequested
    progress_model = PlanProgressed
    completed_model = PlanCompleted
    failed_model = PlanFailed
    cancelled_model = PlanCancelled

    def __init__(
        self, max_evaluations: int, topics: JobTopics | None = None, terrain_loader: TerrainLoader | None = None
    ) -> None:
        super().__init__(topics)
        self.max_evaluations = max_evaluations
        self.terrain_loader = terrain_loader

    def check_spec(self, spec: PlanRequested) -> None:
        """Refuse a job over the evaluation limit, or whose scenario cannot be built."""
        needed = evaluations_needed(spec)
        if needed > self.max_evaluations:
            raise JobRejected(
                "optimizer.iterations",
                f"the job needs {needed:,} evaluations, over this service's limit of {self.max_evaluations:,}",
            )
        if self.terrain_loader is not None:
            try:
                build_scenario(spec.scenario, self.terrain_loader)
            except PlanningError as exc:
                raise JobRejected(exc.field, exc.message) from exc

    def spec_hash(self, spec: PlanRequested) -> str:
        """The normalized spec hash, joined for a terrain file by the map's fingerprint."""
        if self.terrain_loader is None:
            return normalized_spec_hash(spec)
        return job_hash(spec, self.terrain_loader)

    def progress_event(self, job_id: str, progress: Progress) -> PlanProgressed:
        """The progress event of one iteration of one optimizer run."""
        return PlanProgressed(
            job_id=job_id,
            optimizer=optimizer_name(progress.label),
            iteration=progress.iteration,
            iterations=max(1, progress.total),
            progress=min(1.0, max(0.0, progress.fraction)),
            best_cost=_finite(progress.best),
        )

    def progress_fraction(self, event: PlanProgressed) -> float:
        """How far the job is."""
        return event.progress

    def failed_event(self, job_id: str, failure: JobRejected) -> PlanFailed:
        """The failed event: input errors name their field; our own failures are marked retryable."""
        return PlanFailed(job_id=job_id, error=str(failure), field=failure.field, retryable=failure.internal)

    def problem(self, event: PlanFailed) -> dict[str, Any]:
        """422 for a plan the user can fix, 500 for our own failure."""
        if event.retryable:
            return problem_body(500, "Planning failed", event.error, event.field)
        return problem_body(422, "Plan rejected", event.error, event.field)

    def cancelled_event(self, job_id: str, last: Progress | None) -> PlanCancelled:
        """The cancelled event, with the iteration and best cost reached."""
        return PlanCancelled(
            job_id=job_id,
            iteration=last.iteration if last is not None else 0,
            best_cost=_finite(last.best) if last is not None and last.best is not None else None,
        )

    def cancel_command(self, job_id: str) -> CancelPlan:
        """The cancel command."""
        return CancelPlan(job_id=job_id)

    def is_cached(self, event: PlanCompleted) -> bool:
        """Whether the result came from the results cache."""
        return event.cached

    def split_result(self, result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The path and fitness curves go to the artifact store; the rest stays in the event."""
        return split_plan_result(result)


@dataclass(frozen=True)
class PlanJobRunner:
    """Runs one planning job for the job service: progress out, cancellation in, input errors as rejections."""

    terrain_loader: TerrainLoader | None = None
    render_plots: bool = True

    def __call__(
        self, job_id: str, spec: PlanningJobSpec, on_progress: OnProgress, should_stop: ShouldStop
    ) -> JobOutcome[PlanCompleted]:
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
