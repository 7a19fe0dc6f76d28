"""What a kind of job is: a typed class over its spec, progress, completed and failed messages.

A service subclasses `JobKind` once (the training kind, the planning kind), naming its message models as class
attributes and implementing the event builders; the kernel's API, worker and projector call those methods and
never look inside a message by name.

One failure path, used by the API, the worker and the projector alike:
error → `failure_of` → `JobRejected` → `JobKind.failed_event` → failed event → `JobKind.problem` → problem body.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from quartet_contracts.topics import TopicSpec, expand

from quartet_shared.clients import partition_counts
from quartet_shared.http import Problem
from quartet_shared.settings import KernelSettings
from quartet_shared.topics import ensure_topics

# How much of an unexpected error a failed event quotes: enough to say why, small enough that the event is
# never refused as too large itself.
FAILURE_REASON_CHARS = 300

SpecT = TypeVar("SpecT", bound=BaseModel)
ProgressT = TypeVar("ProgressT", bound=BaseModel)
CompletedT = TypeVar("CompletedT", bound=BaseModel)
FailedT = TypeVar("FailedT", bound=BaseModel)


class JobRejected(ValueError):
    """A job that cannot be run: `field` names the culprit (dotted, as in the spec). Never retried.

    `internal` marks our own failure (a crash out of retries) rather than input the user can fix.
    """

    def __init__(self, field: str | None, message: str, *, internal: bool = False) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
        self.internal = internal


def failure_of(error: BaseException) -> JobRejected:
    """The one reading of any error a job ended with: a rejection as it is (or as the cause it wraps), else internal."""
    if isinstance(error, JobRejected):
        return error
    if isinstance(error.__cause__, JobRejected):
        return error.__cause__
    return JobRejected(None, f"{type(error).__name__}: {error}"[:FAILURE_REASON_CHARS], internal=True)


def problem_body(status: int, title: str, detail: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    """An RFC 9457 problem body of a failed job; a named field leads the detail and is listed in `errors`, as
    every 422 lists it."""
    body: dict[str, Any] = {"status": status, "title": title, "detail": detail, **extra}
    if field:
        if not detail.startswith(f"{field}:"):
            body["detail"] = f"{field}: {detail}"
        body["field"] = field
        body["errors"] = [{"field": field, "message": detail}]
    return body


def problem_of(body: Mapping[str, Any]) -> Problem:
    """The HTTP problem of a failed job's problem body (what `JobKind.problem` made of its failed event)."""
    extensions = {k: v for k, v in body.items() if k not in {"status", "title", "detail", "type"}}
    return Problem(int(body["status"]), str(body["title"]), body.get("detail"), **extensions)


@dataclass(frozen=True)
class Progress:
    """Where a running job is: iteration `iteration` of `total`, `fraction` done, best value so far."""

    iteration: int
    total: int
    fraction: float
    best: float | None = None
    label: str | None = None


@dataclass(frozen=True)
class JobOutcome(Generic[CompletedT]):
    """What a run produced: the completed event (None when cancelled), its figures, and the last progress."""

    completed: CompletedT | None
    plots: Mapping[str, bytes] = field(default_factory=dict)
    cancelled: bool = False
    last: Progress | None = None


OnProgress = Callable[[Progress], None]
ShouldStop = Callable[[], bool]
# The service's domain callable: one job of a kind whose spec is SpecT and whose completed event is CompletedT.
RunJob = Callable[[str, SpecT, OnProgress, ShouldStop], JobOutcome[CompletedT]]


@dataclass(frozen=True)
class JobTopics:
    """The four topics of a kind of job."""

    jobs: str
    control: str
    progress: str
    results: str

    @classmethod
    def of(cls, kind: str, prefix: str = "") -> JobTopics:
        """`{prefix}{kind}.jobs` and its siblings (a prefix keeps tests apart)."""
        base = f"{prefix}{kind}"
        return cls(f"{base}.jobs", f"{base}.control", f"{base}.progress", f"{base}.results")

    def specs(self) -> list[TopicSpec]:
        """Topic specs, with retry and dead-letter companions for the jobs and results topics."""
        return expand(
            [
                TopicSpec(self.jobs, "jobs to run; key = job id", with_retry_and_dlq=True),
                TopicSpec(self.control, "cancellations; key = job id", partitions=1),
                TopicSpec(self.progress, "progress of running jobs; key = job id"),
                TopicSpec(self.results, "exactly one outcome per job; key = job id", with_retry_and_dlq=True),
            ]
        )


class JobKind(ABC, Generic[SpecT, ProgressT, CompletedT, FailedT]):
    """One kind of job: its name, topics, message models and the domain-free builders of its events."""

    name: str
    spec_model: type[SpecT]
    progress_model: type[ProgressT]
    completed_model: type[CompletedT]
    failed_model: type[FailedT]
    cancelled_model: type[BaseModel]

    def __init__(self, topics: JobTopics | None = None) -> None:
        self.topics = topics or JobTopics.of(self.name)

    @property
    def source(self) -> str:
        """The CloudEvents source of this kind's events."""
        return f"/quartet/{self.name}"

    def check_spec(self, spec: SpecT) -> None:
        """Raise JobRejected for a spec this service will not run (checked by the API and again by the worker)."""

    @abstractmethod
    def spec_hash(self, spec: SpecT) -> str:
        """The results-cache key of a spec."""

    @abstractmethod
    def progress_event(self, job_id: str, progress: Progress) -> ProgressT:
        """The progress event of a running job."""

    @abstractmethod
    def progress_fraction(self, event: ProgressT) -> float:
        """How far (0..1) a progress event says the job is."""

    @abstractmethod
    def failed_event(self, job_id: str, failure: JobRejected) -> FailedT:
        """The failed event of a job that ended with `failure` (the only error → event function)."""

    @abstractmethod
    def problem(self, event: FailedT) -> dict[str, Any]:
        """The RFC 9457 problem body of a failed event (the only event → problem function)."""

    @abstractmethod
    def cancelled_event(self, job_id: str, last: Progress | None) -> BaseModel:
        """The cancelled event of a job stopped at `last`."""

    @abstractmethod
    def cancel_command(self, job_id: str) -> BaseModel:
        """The control-topic command asking workers to stop a job."""

    @abstractmethod
    def is_cached(self, event: CompletedT) -> bool:
        """Whether a completed event was served from the results cache."""

    def split_result(self, result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """A completed result (as JSON) split into the bounded summary its event carries and the large parts stored
        beside the job (the claim-check); the default keeps everything in the event."""
        return result, {}

    def ensure_topics(self, settings: KernelSettings, wait_s: float = 30.0) -> None:
        """Create the kind's topics if missing and wait until their partitions are known."""
        specs = self.topics.specs()
        ensure_topics(settings, specs)
        # A consumer that subscribes before a new topic's metadata is visible may not see its partitions
        # until its next metadata refresh, minutes later; waiting here keeps the first assignment whole.
        with contextlib.suppress(LookupError):
            partition_counts(settings, [s.name for s in specs], wait_s)


AnyJobKind = JobKind[Any, Any, Any, Any]

__all__ = [
    "FAILURE_REASON_CHARS",
    "AnyJobKind",
    "CompletedT",
    "FailedT",
    "JobKind",
    "JobOutcome",
    "JobRejected",
    "JobTopics",
    "OnProgress",
    "Progress",
    "ProgressT",
    "RunJob",
    "ShouldStop",
    "SpecT",
    "failure_of",
    "problem_body",
    "problem_of",
]
