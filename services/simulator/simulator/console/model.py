"""The console's view models: pure functions of what the feed collected and the job services answered.

The live audit applies the run audit's rules to everything seen since the console started: a job is
accepted once its request is committed on a jobs topic, done once a committed outcome names it, doubled
when more than one does. A job with no outcome is in flight until `lost_after_s` has passed, then lost:
live, nobody can tell a slow job from a lost one sooner.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from simulator.domain.audit import DeadLetterSeen, EventSeen, ResultSeen

FINISHED = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True)
class Accepted:
    """A job request committed on a jobs topic."""

    job_id: str
    kind: str
    at: float


@dataclass(frozen=True)
class AuditView:
    """The live audit's figures."""

    accepted: int = 0
    completed: int = 0
    failed: int = 0
    in_flight: int = 0
    lost: int = 0
    doubled: int = 0
    dead_lettered: int = 0
    lost_ids: tuple[str, ...] = ()
    doubled_ids: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def accepted_jobs(events: Iterable[EventSeen], request_types: Mapping[str, str]) -> list[Accepted]:
    """The job requests among `events` (cancel commands share the jobs topics), first sighting per job id."""
    seen: dict[str, Accepted] = {}
    for event in events:
        kind = request_types.get(event.ce_type)
        job_id = event.subject or event.key
        if kind is not None and job_id and job_id not in seen:
            seen[job_id] = Accepted(job_id, kind, event.at)
    return list(seen.values())


def live_audit(
    accepted: Sequence[Accepted],
    results: Sequence[ResultSeen],
    dead_letters: Sequence[DeadLetterSeen],
    now: float,
    lost_after_s: float,
) -> AuditView:
    """Reconcile the accepted jobs with the committed outcomes and dead letters seen so far."""
    outcomes: dict[str, list[str]] = {}
    for r in results:
        outcomes.setdefault(r.job_id, []).append(r.outcome)
    completed = failed = in_flight = 0
    lost: list[str] = []
    for job in accepted:
        seen = outcomes.get(job.job_id)
        if seen:
            completed += seen[0] == "completed"
            failed += seen[0] != "completed"
        elif now - job.at > lost_after_s:
            lost.append(job.job_id)
        else:
            in_flight += 1
    ids = {j.job_id for j in accepted}
    doubled = sorted(j for j, seen in outcomes.items() if j in ids and len(seen) > 1)
    return AuditView(
        accepted=len(accepted),
        completed=completed,
        failed=failed,
        in_flight=in_flight,
        lost=len(lost),
        doubled=len(doubled),
        dead_lettered=len(dead_letters),
        lost_ids=tuple(sorted(lost)[:20]),
        doubled_ids=tuple(doubled[:20]),
    )


@dataclass(frozen=True)
class JobRow:
    """A job as the console lists it."""

    id: str
    kind: str
    status: str
    percent: int
    created_at: str
    finished: bool
    problem: str | None = None

    @classmethod
    def of(cls, kind: str, job: Mapping[str, Any]) -> JobRow:
        """A row from a job service's `JobPublic` JSON."""
        status = str(job.get("status", "unknown"))
        # A finished job's bar is full whatever its last progress event said.
        progress = 1.0 if status == "succeeded" else float(job.get("progress") or 0.0)
        problem = job.get("problem") or None
        return cls(
            id=str(job["id"]),
            kind=kind,
            status=status,
            percent=max(0, min(100, round(progress * 100))),
            created_at=str(job.get("created_at", ""))[:19].replace("T", " "),
            finished=status in FINISHED,
            problem=problem_text(problem) if problem else None,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def problem_text(problem: Mapping[str, Any]) -> str:
    """An RFC 9457 problem as one line: title, then detail."""
    title = str(problem.get("title") or "Problem")
    detail = problem.get("detail")
    return f"{title}: {detail}" if detail else title


def newest_first(rows: Iterable[JobRow], limit: int) -> list[JobRow]:
    """The `limit` most recent rows of every kind."""
    return sorted(rows, key=lambda r: r.created_at, reverse=True)[:limit]


@dataclass(frozen=True)
class Health:
    """Whether the console's sources answer, each with the reason when not."""

    kafka: str | None = None
    redis: str | None = None
    jobs: Mapping[str, str] = field(default_factory=dict)

    @property
    def notices(self) -> list[str]:
        """What the page says is down, one sentence per part."""
        out = []
        if self.kafka:
            out.append(f"Kafka is down: {self.kafka}")
        if self.redis:
            out.append(f"Redis is down: {self.redis}")
        return out + [f"The {kind} API is down: {why}" for kind, why in sorted(self.jobs.items())]


_HIDDEN = frozenset({"job_id", "spec_hash", "result_ref", "plots"})
MAX_FACTS = 16


def _shown(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def result_facts(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A result's headline figures: its scalar fields, and one level of named numbers (metrics) beside them."""
    facts: list[tuple[str, str]] = []
    for name, value in result.items():
        if name in _HIDDEN:
            continue
        if isinstance(value, str | int | float | bool):
            facts.append((name, _shown(value)))
        elif isinstance(value, Mapping) and value and all(isinstance(v, int | float) for v in value.values()):
            facts += [(f"{name}.{k}", _shown(v)) for k, v in value.items()]
    return facts[:MAX_FACTS]
