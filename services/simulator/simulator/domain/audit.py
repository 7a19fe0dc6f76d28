"""The audit: reconcile what the run sent with what the system produced, and measure how fast it did.

Inputs are plain records gathered by the adapters (published jobs and garbage, committed result events,
dead letters, rental findings); `reconcile` is a pure function of them, so every rule is unit-tested
with fakes. A job is *accepted* once the broker acknowledged one of its publishes (acks=all).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from simulator.domain.anomalies import Anomalies, KeyedRecord, aborted_reads, out_of_order
from simulator.domain.stats import Percentiles, percentiles

SAMPLE = 50
OUTCOMES = ("completed", "failed", "cancelled")


@dataclass(frozen=True)
class SentJob:
    """A job the run published: its kind, when it was first published, and whether the broker acknowledged it."""

    job_id: str
    kind: str
    submitted_at: float
    accepted: bool
    publishes: int = 1
    error: str | None = None
    large: bool = False


@dataclass(frozen=True)
class ResultSeen:
    """A committed outcome event on a results topic."""

    job_id: str
    kind: str
    outcome: str
    at: float
    topic: str
    partition: int
    offset: int
    cached: bool = False
    detail: str | None = None
    time: float | None = None


@dataclass(frozen=True)
class GarbageSent:
    """A garbage message the run published onto `topic`, keyed `key`."""

    key: str
    kind: str
    flavour: str
    topic: str
    accepted: bool


@dataclass(frozen=True)
class DeadLetterSeen:
    """A record on a dead-letter topic, with the reason the kernel recorded."""

    key: str | None
    topic: str
    original_topic: str | None
    error_type: str | None
    ce_id: str | None
    at: float


@dataclass(frozen=True)
class EventSeen:
    """A committed record on an events topic (the rental events), decoded."""

    topic: str
    partition: int
    offset: int
    ce_id: str
    ce_type: str
    subject: str | None
    key: str | None
    data: Mapping[str, Any]
    at: float
    time: float | None = None


@dataclass(frozen=True)
class CorruptRecord:
    """A record on a results or events topic that is not a readable event."""

    topic: str
    partition: int
    offset: int
    error: str


@dataclass
class RentalFindings:
    """What the rental journeys did and what the rental checks found."""

    checked: bool = False
    journeys: int = 0
    completed: int = 0
    steps: dict[str, int] = field(default_factory=dict)
    conflicts: int = 0
    commands: int = 0
    errors: list[str] = field(default_factory=list)
    leases: int = 0
    overlapping_leases: list[str] = field(default_factory=list)
    events_seen: int = 0
    event_mismatches: list[str] = field(default_factory=list)
    unavailable: str | None = None


class Check(BaseModel):
    """One audit rule and whether the run kept it."""

    name: str
    passed: bool
    detail: str = ""


class JobCounts(BaseModel):
    """Counts over a set of jobs."""

    submitted: int = 0
    accepted: int = 0
    unconfirmed: int = 0
    duplicate_publishes: int = 0
    with_result: int = 0
    lost: int = 0
    doubled: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    cached: int = 0
    dead_lettered: int = 0


class GarbageCounts(BaseModel):
    """What became of the garbage."""

    sent: int = 0
    accepted: int = 0
    in_dlq: int = 0
    missing: int = 0
    misrouted: int = 0
    by_flavour: dict[str, int] = Field(default_factory=dict)


class AuditResult(BaseModel):
    """The audit's verdict, its counts, samples of what went wrong, and latency percentiles."""

    passed: bool
    checks: list[Check]
    jobs: JobCounts
    per_kind: dict[str, JobCounts]
    large: dict[str, JobCounts] = Field(
        default_factory=dict, description="Per kind, the jobs whose pool entry is marked large (results over 1 MiB)."
    )
    garbage: GarbageCounts
    orphans: int = 0
    corrupt: int = 0
    lost_ids: list[str] = Field(default_factory=list)
    doubled_ids: list[str] = Field(default_factory=list)
    orphan_ids: list[str] = Field(default_factory=list)
    missing_garbage: list[str] = Field(default_factory=list)
    failures: list[str] = Field(default_factory=list)
    dead_lettered_jobs: list[str] = Field(default_factory=list)
    latency: dict[str, Percentiles] = Field(default_factory=dict)
    anomalies: Anomalies = Field(default_factory=Anomalies, description="The anomalies under Jepsen's names.")


@dataclass(frozen=True)
class AuditPolicy:
    """What the audit holds the run to."""

    expect_success: bool = True
    foreign_results: str = "fail"
    dlq_suffix: str = ".dlq"


def _counts(jobs: Iterable[SentJob], results: dict[str, list[ResultSeen]], dead: set[str]) -> JobCounts:
    c = JobCounts()
    for job in jobs:
        c.submitted += 1
        c.duplicate_publishes += max(0, job.publishes - 1)
        seen = results.get(job.job_id, [])
        if job.accepted:
            c.accepted += 1
        else:
            c.unconfirmed += 1
        if seen:
            c.with_result += 1
            outcome = seen[0].outcome
            if outcome in OUTCOMES:
                setattr(c, outcome, getattr(c, outcome) + 1)
            c.cached += int(seen[0].cached)
        elif job.accepted:
            c.lost += 1
        if len(seen) > 1:
            c.doubled += 1
        if job.job_id in dead:
            c.dead_lettered += 1
    return c


@dataclass(frozen=True)
class _JobFindings:
    """What became of the jobs: results grouped by job, and the ids each job rule flags."""

    by_job: dict[str, list[ResultSeen]]
    dead_ids: set[str]
    dead_jobs: list[str]
    lost: list[str]
    doubled: list[str]
    orphans: list[str]
    failures: list[str]
    aborted_read: list[str]


def _find(
    sent: Sequence[SentJob],
    results: Sequence[ResultSeen],
    garbage: Sequence[GarbageSent],
    dead_letters: Sequence[DeadLetterSeen],
    aborted_ids: frozenset[str] = frozenset(),
) -> _JobFindings:
    by_job: dict[str, list[ResultSeen]] = defaultdict(list)
    for r in sorted(results, key=lambda r: (r.at, r.topic, r.partition, r.offset)):
        by_job[r.job_id].append(r)
    sent_by_id = {j.job_id: j for j in sent}
    dead_ids = {d.ce_id for d in dead_letters if d.ce_id} | {d.key for d in dead_letters if d.key}
    # A garbage job record with a readable ce_id is answered by its worker with one failed result, like a job.
    answerable = set(sent_by_id) | {g.key for g in garbage}
    return _JobFindings(
        by_job=by_job,
        dead_ids=dead_ids,
        dead_jobs=sorted(j for j in sent_by_id if j in dead_ids),
        lost=sorted(j.job_id for j in sent if j.accepted and not by_job.get(j.job_id)),
        doubled=sorted(j for j, seen in by_job.items() if j in answerable and len(seen) > 1),
        orphans=sorted(j for j in by_job if j not in answerable and j not in aborted_ids),
        failures=[
            f"{seen[0].kind} job {job_id}: {seen[0].outcome}: {seen[0].detail or 'no detail'}"
            for job_id, seen in sorted(by_job.items())
            if job_id in sent_by_id and seen[0].outcome != "completed"
        ],
        aborted_read=aborted_reads(by_job, aborted_ids),
    )


def _job_checks(
    found: _JobFindings,
    garbage: GarbageCounts,
    missing_garbage: list[str],
    corrupt: Sequence[CorruptRecord],
    policy: AuditPolicy,
) -> list[Check]:
    ignore_foreign = policy.foreign_results == "ignore"
    checks = [
        Check(
            name="no accepted job lost",
            passed=not found.lost,
            detail=f"{len(found.lost)} accepted job(s) without a result",
        ),
        Check(
            name="no job has two results",
            passed=not found.doubled,
            detail=f"{len(found.doubled)} job(s) with more than one result",
        ),
        Check(
            name="no result for a job never sent",
            passed=not found.orphans or ignore_foreign,
            detail=f"{len(found.orphans)} result(s) for unknown job ids"
            + (" (ignored by audit.foreign_results)" if found.orphans and ignore_foreign else ""),
        ),
        Check(
            name="every garbage message is in its dead-letter topic",
            passed=not missing_garbage and not garbage.misrouted,
            detail=f"{garbage.in_dlq} of {garbage.accepted} accepted garbage message(s) dead-lettered; "
            f"{len(missing_garbage)} missing, {garbage.misrouted} in the wrong topic",
        ),
        Check(
            name="results topics hold only readable events",
            passed=not corrupt,
            detail=f"{len(corrupt)} unreadable record(s)",
        ),
        Check(
            name="no aborted read",
            passed=not found.aborted_read,
            detail=f"{len(found.aborted_read)} record(s) of transactions never committed read as committed",
        ),
    ]
    if policy.expect_success:
        checks.append(
            Check(
                name="every job succeeded",
                passed=not found.failures,
                detail=f"{len(found.failures)} job(s) failed or were cancelled",
            )
        )
    return checks


def _latencies(
    sent: Sequence[SentJob], by_job: dict[str, list[ResultSeen]], kinds: list[str]
) -> dict[str, Percentiles]:
    latency: dict[str, Percentiles] = {}
    for kind in [None, *kinds]:
        values = [
            by_job[j.job_id][0].at - j.submitted_at
            for j in sent
            if j.accepted and by_job.get(j.job_id) and (kind is None or j.kind == kind)
        ]
        latency[kind or "all"] = percentiles(values)
    return latency


def reconcile(
    sent: Sequence[SentJob],
    results: Sequence[ResultSeen],
    garbage: Sequence[GarbageSent],
    dead_letters: Sequence[DeadLetterSeen],
    corrupt: Sequence[CorruptRecord] = (),
    rental: RentalFindings | None = None,
    policy: AuditPolicy = AuditPolicy(),
    extra_checks: Sequence[Check] = (),
    *,
    events: Sequence[EventSeen] = (),
    aborted_ids: Iterable[str] = (),
) -> AuditResult:
    """Check every rule of the audit and compute latencies; `passed` is True only if every check passed.

    `events` are the events topics' records (their per-key order is checked with the results'), `aborted_ids` the
    ids the run wrote only in transactions it never committed.
    """
    aborted = frozenset(aborted_ids)
    found = _find(sent, results, garbage, dead_letters, aborted)
    anomalies = _anomalies(found, results, events, len(aborted))
    kinds = sorted({j.kind for j in sent})
    per_kind = {kind: _counts([j for j in sent if j.kind == kind], found.by_job, found.dead_ids) for kind in kinds}
    large = {
        kind: _counts([j for j in sent if j.kind == kind and j.large], found.by_job, found.dead_ids)
        for kind in sorted({j.kind for j in sent if j.large})
    }
    garbage_counts, missing = _garbage(garbage, dead_letters, policy.dlq_suffix)
    checks = _job_checks(found, garbage_counts, missing, corrupt, policy)
    checks.append(
        Check(
            name="per key, nothing out of order",
            passed=not anomalies.out_of_order,
            detail=f"{anomalies.out_of_order} record(s) whose offset or time went back within their key",
        )
    )
    if rental is not None and rental.checked:
        checks += _rental_checks(rental)
    checks += extra_checks
    return AuditResult(
        passed=all(c.passed for c in checks),
        checks=checks,
        jobs=_counts(sent, found.by_job, found.dead_ids),
        per_kind=per_kind,
        large=large,
        garbage=garbage_counts,
        orphans=len(found.orphans),
        corrupt=len(corrupt),
        lost_ids=found.lost[:SAMPLE],
        doubled_ids=found.doubled[:SAMPLE],
        orphan_ids=found.orphans[:SAMPLE],
        missing_garbage=missing[:SAMPLE],
        failures=found.failures[:SAMPLE],
        dead_lettered_jobs=found.dead_jobs[:SAMPLE],
        latency=_latencies(sent, found.by_job, kinds),
        anomalies=anomalies,
    )


def _anomalies(
    found: _JobFindings, results: Sequence[ResultSeen], events: Sequence[EventSeen], aborted_written: int
) -> Anomalies:
    """The findings under Jepsen's names, with the per-key order of results and events (in the order read)."""
    keyed = [KeyedRecord(r.job_id, r.topic, r.partition, r.offset, r.time) for r in results]
    keyed += [KeyedRecord(e.key, e.topic, e.partition, e.offset, e.time) for e in events if e.key is not None]
    disorder = out_of_order(keyed)
    return Anomalies(
        lost=len(found.lost),
        duplicated=len(found.doubled),
        unexpected=len(found.orphans),
        aborted_read=len(found.aborted_read),
        out_of_order=len(disorder),
        aborted_written=aborted_written,
        aborted_read_ids=found.aborted_read[:SAMPLE],
        out_of_order_keys=disorder[:SAMPLE],
    )


def _garbage(
    garbage: Sequence[GarbageSent], dead_letters: Sequence[DeadLetterSeen], suffix: str
) -> tuple[GarbageCounts, list[str]]:
    where: dict[str, set[str]] = defaultdict(set)
    for d in dead_letters:
        if d.key is not None:
            where[d.key].add(d.topic)
    counts = GarbageCounts(sent=len(garbage), by_flavour=dict(Counter(g.flavour for g in garbage)))
    missing: list[str] = []
    misrouted = 0
    for g in garbage:
        counts.accepted += int(g.accepted)
        topics = where.get(g.key, set())
        if g.topic + suffix in topics:
            counts.in_dlq += 1
        elif topics:
            misrouted += 1
        elif g.accepted:
            missing.append(g.key)
    counts.missing = len(missing)
    counts.misrouted = misrouted
    return counts, sorted(missing)


def _rental_checks(rental: RentalFindings) -> list[Check]:
    if rental.unavailable:
        return [Check(name="rental checks ran", passed=False, detail=rental.unavailable)]
    return [
        Check(
            name="no house has overlapping leases",
            passed=not rental.overlapping_leases,
            detail=f"{len(rental.overlapping_leases)} overlapping pair(s) among {rental.leases} lease(s)",
        ),
        Check(
            name="rental events match the database",
            passed=not rental.event_mismatches,
            detail=f"{len(rental.event_mismatches)} mismatch(es) over {rental.events_seen} event(s)",
        ),
        Check(
            name="rental journeys met no unexpected errors",
            passed=not rental.errors,
            detail=f"{len(rental.errors)} unexpected answer(s); {rental.conflicts} expected conflict(s)",
        ),
    ]
