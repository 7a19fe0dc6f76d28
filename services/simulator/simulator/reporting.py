"""The run report: the audit of what the run saw, with the throughput, latency and lag series over the run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simulator.domain.audit import (
    AuditPolicy,
    Check,
    CorruptRecord,
    DeadLetterSeen,
    EventSeen,
    GarbageSent,
    RentalFindings,
    ResultSeen,
    SentJob,
    reconcile,
)
from simulator.domain.plan import Plan
from simulator.domain.recovery import fault_windows, outside_windows, recovery_summary
from simulator.domain.report import FaultRecord, LagSeries, Planned, RunReport, Throughput, WorkerStats
from simulator.domain.scenario import Scenario
from simulator.domain.stats import Percentiles, bucket_percentiles, bucket_size, percentiles, rate_series
from simulator.kafka_io import LagSample


@dataclass(frozen=True)
class Timing:
    """When the run started (wall clock and epoch seconds), how long load and settling took, and if it settled."""

    started_at: datetime
    t0: float
    load_s: float = 0.0
    settle_s: float = 0.0
    settled: bool = False


@dataclass(frozen=True)
class Observed:
    """Everything the run saw: what it published, what came out, the lag, the faults, workers and rental findings."""

    sent: list[SentJob]
    garbage: list[GarbageSent]
    results: list[ResultSeen]
    dead_letters: list[DeadLetterSeen]
    corrupt: list[CorruptRecord]
    lag: list[LagSample]
    faults: list[FaultRecord]
    workers: dict[str, WorkerStats] = field(default_factory=dict)
    rental: RentalFindings | None = None
    notes: list[str] = field(default_factory=list)
    events: list[EventSeen] = field(default_factory=list)
    aborted_ids: frozenset[str] = frozenset()


def build_report(run_id: str, scenario: Scenario, plan: Plan, timing: Timing, seen: Observed) -> RunReport:
    """Audit what the run saw against its plan and put the verdict, counts and time series in one report."""
    planned_faults = [f.fault.kind for f in plan.faults]
    audit = reconcile(
        seen.sent,
        seen.results,
        seen.garbage,
        seen.dead_letters,
        seen.corrupt,
        seen.rental,
        AuditPolicy(expect_success=scenario.audit.expect_success, foreign_results=scenario.audit.foreign_results),
        [_faults_check(seen.faults, len(planned_faults))],
        events=seen.events,
        aborted_ids=seen.aborted_ids,
    )
    end = max([timing.t0 + timing.load_s, *(r.at for r in seen.results)])
    throughput, jobs_per_s = _throughput(seen.sent, seen.results, timing.t0, end)
    lag = _lag_series(seen.lag, timing.t0)
    recovery = recovery_summary(seen.faults, lag)
    return RunReport(
        run_id=run_id,
        scenario=scenario.name,
        description=scenario.description,
        seed=scenario.seed,
        plan_digest=plan.digest(),
        started_at=timing.started_at.isoformat(),
        finished_at=datetime.now(UTC).isoformat(),
        duration_s=scenario.duration_s,
        load_s=timing.load_s,
        settle_s=timing.settle_s,
        settled=timing.settled,
        planned=Planned(
            jobs={k: plan.count(k) for k in scenario.kinds()},
            journeys=len(plan.journeys),
            duplicates=plan.duplicates,
            garbage=len(plan.garbage),
            faults={k: planned_faults.count(k) for k in dict.fromkeys(planned_faults)},
        ),
        audit=audit,
        throughput=throughput,
        jobs_per_s=jobs_per_s,
        lag=lag,
        faults=seen.faults,
        recovery=recovery,
        latency_outside_faults=latency_outside(seen.sent, seen.results, timing.t0, fault_windows(recovery)),
        workers=seen.workers,
        rental=_rental_dict(seen.rental),
        notes=seen.notes,
    )


def _faults_check(faults: list[FaultRecord], planned: int) -> Check:
    return Check(
        name="every scheduled fault was injected",
        passed=len(faults) == planned and all(f.ok for f in faults),
        detail=f"{sum(f.ok for f in faults)} of {planned} injected"
        + "".join(f"; {f.kind} at {f.at_s:.1f} s: {f.detail}" for f in faults if not f.ok),
    )


def _throughput(sent: list[SentJob], results: list[ResultSeen], t0: float, end: float) -> tuple[Throughput, float]:
    """Submission and completion rates and latency percentiles per bucket, and the jobs per second overall."""
    by_id = {j.job_id: j for j in sent}
    first: dict[str, float] = {}
    for r in sorted(results, key=lambda r: r.at):
        if r.job_id in by_id:
            first.setdefault(r.job_id, r.at)
    bucket = bucket_size(end - t0)
    kinds = sorted({j.kind for j in sent})
    latencies = [(at, at - by_id[job].submitted_at) for job, at in first.items()]
    throughput = Throughput(
        bucket_s=bucket,
        t_s=[k * bucket for k in range(len(rate_series([], t0, end, bucket)))],
        submitted={k: rate_series((j.submitted_at for j in sent if j.kind == k), t0, end, bucket) for k in kinds},
        completed={
            k: rate_series((at for job, at in first.items() if by_id[job].kind == k), t0, end, bucket) for k in kinds
        },
        latency_p50=bucket_percentiles(latencies, t0, end, bucket, 50),
        latency_p95=bucket_percentiles(latencies, t0, end, bucket, 95),
        latency_p99=bucket_percentiles(latencies, t0, end, bucket, 99),
    )
    span = (max(first.values()) - t0) if first else 0.0
    return throughput, len(first) / span if span > 0 else 0.0


def latency_outside(
    sent: list[SentJob], results: list[ResultSeen], t0: float, windows: list[tuple[float, float]]
) -> Percentiles:
    """Submit-to-result latency of the jobs whose whole life, from submit to first result, met no fault's window."""
    first: dict[str, float] = {}
    for r in results:
        first[r.job_id] = min(r.at, first.get(r.job_id, r.at))
    return percentiles(
        [
            first[j.job_id] - j.submitted_at
            for j in sent
            if j.accepted and j.job_id in first and outside_windows(j.submitted_at - t0, first[j.job_id] - t0, windows)
        ]
    )


def _lag_series(samples: list[LagSample], t0: float) -> list[LagSeries]:
    series = []
    for group in sorted({s.group for s in samples}):
        mine = [s for s in samples if s.group == group]
        series.append(LagSeries(group=group, t_s=[s.at - t0 for s in mine], lag=[s.lag for s in mine]))
    return series


def _rental_dict(rental: RentalFindings | None) -> dict[str, Any] | None:
    if rental is None:
        return None
    return {
        "journeys": rental.journeys,
        "completed": rental.completed,
        "steps": rental.steps,
        "conflicts": rental.conflicts,
        "commands": rental.commands,
        "errors": rental.errors[:50],
        "leases": rental.leases,
        "overlapping_leases": rental.overlapping_leases[:50],
        "events_seen": rental.events_seen,
        "event_mismatches": rental.event_mismatches[:50],
        "unavailable": rental.unavailable,
    }
