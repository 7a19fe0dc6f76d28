"""A planning job kind run by a scripted job function, for tests of the kernel's job-service layer."""

from __future__ import annotations

import threading
import time
from typing import Any

from quartet_contracts.schemas.planning import (
    CancelPlan,
    CostTerms,
    PlanCancelled,
    PlanCompleted,
    PlanFailed,
    PlanProgressed,
    PlanRequested,
    normalized_spec_hash,
)
from quartet_shared.jobkind import problem_body
from quartet_shared.jobservice import JobKind, JobOutcome, JobRejected, JobTopics, OnProgress, Progress, ShouldStop

MAX_EVALUATIONS = 10_000


def spec(seed: int = 0, population: int = 10, iterations: int = 10) -> dict[str, Any]:
    """A small valid planning spec; the scripted job function ignores everything but the seed."""
    return {
        "scenario": {
            "terrain": {"kind": "gaussian"},
            "bounds": {"x": [1, 100], "y": [1, 100]},
            "start": [5, 5, 50],
            "goal": [90, 90, 50],
        },
        "optimizer": {"population": population, "iterations": iterations},
        "seed": seed,
    }


class ScriptedKind(JobKind[PlanRequested, PlanProgressed, PlanCompleted, PlanFailed]):
    """The planning schemas with an evaluation limit of MAX_EVALUATIONS."""

    name = "planning"
    spec_model = PlanRequested
    progress_model = PlanProgressed
    completed_model = PlanCompleted
    failed_model = PlanFailed
    cancelled_model = PlanCancelled

    def check_spec(self, spec: PlanRequested) -> None:
        if spec.optimizer.evaluations > MAX_EVALUATIONS:
            raise JobRejected("optimizer.iterations", f"over the limit of {MAX_EVALUATIONS}")

    def spec_hash(self, spec: PlanRequested) -> str:
        return normalized_spec_hash(spec)

    def progress_event(self, job_id: str, progress: Progress) -> PlanProgressed:
        return PlanProgressed(
            job_id=job_id,
            iteration=progress.iteration,
            iterations=progress.total,
            progress=progress.fraction,
            best_cost=progress.best or 0.0,
        )

    def progress_fraction(self, event: PlanProgressed) -> float:
        return event.progress

    def failed_event(self, job_id: str, failure: JobRejected) -> PlanFailed:
        return PlanFailed(job_id=job_id, error=failure.message, field=failure.field, retryable=failure.internal)

    def problem(self, event: PlanFailed) -> dict[str, Any]:
        return problem_body(500 if event.retryable else 422, "Job failed", event.error, event.field)

    def cancelled_event(self, job_id: str, last: Progress | None) -> PlanCancelled:
        return PlanCancelled(job_id=job_id, iteration=last.iteration if last else 0)

    def cancel_command(self, job_id: str) -> CancelPlan:
        return CancelPlan(job_id=job_id)

    def is_cached(self, event: PlanCompleted) -> bool:
        return event.cached


def kind_for(topics: JobTopics) -> ScriptedKind:
    """The scripted planning kind on `topics`."""
    return ScriptedKind(topics)


class Script:
    """A job function: seed 1 is bad input, 2 runs until stopped, 5 always crashes, others finish in 5 steps.

    While `hold` is set, a job does not finish its last step (it still notices a stop), so a test can stop a
    worker in the middle of a job without racing it.
    """

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.running = threading.Event()
        self.hold = threading.Event()

    def __call__(self, job_id: str, request: Any, on_progress: OnProgress, should_stop: ShouldStop) -> JobOutcome:
        self.runs.append(job_id)
        if request.seed == 1:
            raise JobRejected("scenario.start", "inside threats[0]")
        if request.seed == 5:
            raise RuntimeError("solver crashed")
        steps = 10_000 if request.seed == 2 else 5
        last = None
        for i in range(1, steps + 1):
            if should_stop():
                return JobOutcome(None, cancelled=True, last=last)
            last = Progress(i, steps, i / steps, best=10.0 / i)
            on_progress(last)
            self.running.set()
            time.sleep(0.02)
            while i == steps and self.hold.is_set() and not should_stop():
                time.sleep(0.02)
        if should_stop():
            return JobOutcome(None, cancelled=True, last=last)
        completed = PlanCompleted(
            job_id=job_id,
            spec_hash="h",
            optimizer="iboa",
            encoding="spherical",
            best_cost=1.0,
            cost=CostTerms(total=1.0, length=1.0, threat=0.0, altitude=0.0, smoothness=0.0),
            feasible=True,
            waypoints=[],
            path=[],
            fitness_curve=[1.0],
            evaluations=50,
            runtime_s=0.1,
            plots=["chart"],
        )
        return JobOutcome(completed, {"chart": b"\x89PNG fake"}, last=last)
