"""The run report: what was planned, what happened (faults, workers), the audit, and the time series."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from simulator.domain.audit import AuditResult
from simulator.domain.recovery import RecoverySummary
from simulator.domain.stats import Percentiles


class FaultRecord(BaseModel):
    """A fault as it happened: seconds from the start of the run, what it hit, and whether it worked."""

    kind: str
    at_s: float
    end_s: float | None = None
    target: str | None = None
    detail: str = ""
    ok: bool = True


class Throughput(BaseModel):
    """Per-second rates in fixed buckets from the start of the run; latency percentiles by completion time."""

    bucket_s: float
    t_s: list[float]
    submitted: dict[str, list[float]]
    completed: dict[str, list[float]]
    latency_p50: list[float | None] = Field(default_factory=list)
    latency_p95: list[float | None] = Field(default_factory=list)
    latency_p99: list[float | None] = Field(default_factory=list)


class LagSeries(BaseModel):
    """A consumer group's lag (records not yet committed) over time; None where it could not be read."""

    group: str
    t_s: list[float]
    lag: list[int | None]


class WorkerStats(BaseModel):
    """What the supervisor did with one kind's workers."""

    managed: int = 0
    starts: int = 0
    restarts: int = 0
    killed: int = 0


class Planned(BaseModel):
    """What the seeded plan asked for."""

    jobs: dict[str, int]
    journeys: int
    duplicates: int
    garbage: int
    faults: dict[str, int]


class RunReport(BaseModel):
    """Everything a run measured and concluded; `passed` mirrors the audit."""

    run_id: str
    scenario: str
    description: str = ""
    seed: int
    plan_digest: str
    started_at: str
    finished_at: str
    duration_s: float
    load_s: float
    settle_s: float
    settled: bool
    planned: Planned
    audit: AuditResult
    throughput: Throughput
    jobs_per_s: float
    lag: list[LagSeries] = Field(default_factory=list)
    faults: list[FaultRecord] = Field(default_factory=list)
    recovery: RecoverySummary = Field(default_factory=RecoverySummary)
    latency_outside_faults: Percentiles = Field(
        default_factory=Percentiles,
        description="Latency of the jobs submitted and answered outside every fault's window (start to recovery).",
    )
    workers: dict[str, WorkerStats] = Field(default_factory=dict)
    rental: dict[str, Any] | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every audit check passed."""
        return self.audit.passed

    def _jepsen_lines(self) -> list[str]:
        an, rec = self.audit.anomalies, self.recovery
        lines = [
            f"  anomalies: lost {an.lost}, duplicated {an.duplicated}, unexpected {an.unexpected}, aborted read "
            f"{an.aborted_read} (of {an.aborted_written} aborted probes), out of order {an.out_of_order}"
        ]
        if rec.faults:
            t = rec.times
            times = f"p50 {t.p50:.1f} s, max {t.max:.1f} s" if t.count else "none"
            lines.append(
                f"  recovery (lag back to its level before the fault): {times} over {t.count} fault(s)"
                + (f", {rec.unrecovered} NOT recovered" if rec.unrecovered else "")
            )
        return lines

    def summary(self) -> str:
        """A few lines for a terminal: verdict, counts, faults, throughput, latency and every check."""
        a = self.audit
        j = a.jobs
        kinds = ", ".join(f"{k} {c.submitted}" for k, c in a.per_kind.items())
        lat = a.latency.get("all")
        faults: dict[str, int] = {}
        for f in self.faults:
            faults[f.kind] = faults.get(f.kind, 0) + 1
        fault_text = ", ".join(f"{k}×{n}" for k, n in faults.items()) or "none"
        failed_faults = [f for f in self.faults if not f.ok]
        garbage_pct = 100.0 * a.garbage.in_dlq / a.garbage.accepted if a.garbage.accepted else 100.0
        lines = [
            f'Quartet simulation "{self.scenario}" (seed {self.seed}, plan {self.plan_digest[:12]}): '
            + ("PASSED" if self.passed else "FAILED"),
            f"  jobs: {j.submitted} submitted ({kinds or 'none'}), {j.accepted} accepted, {j.with_result} with a "
            f"result; lost {j.lost}, doubled {j.doubled}, orphan results {a.orphans}",
            f"  outcomes: {j.completed} completed ({j.cached} from cache), {j.failed} failed, {j.cancelled} cancelled",
            *(
                f"  large results ({kind}): {c.submitted} submitted, {c.accepted} accepted, {c.completed} completed; "
                f"lost {c.lost}, doubled {c.doubled}"
                for kind, c in a.large.items()
            ),
            f"  duplicates published: {j.duplicate_publishes}; garbage: {a.garbage.sent} sent, {a.garbage.in_dlq} in "
            f"dead-letter topics ({garbage_pct:.0f} % of accepted)",
            f"  faults: {fault_text}" + (f" ({len(failed_faults)} could not be injected)" if failed_faults else ""),
            f"  throughput: {self.jobs_per_s:.1f} jobs/s over {self.load_s:.0f} s of load, settled "
            + (f"in {self.settle_s:.0f} s" if self.settled else f"NOT within {self.settle_s:.0f} s"),
        ]
        lines += self._jepsen_lines()
        if lat is not None and lat.count:
            lines.append(
                f"  latency (submit → result): p50 {lat.p50:.3f} s, p95 {lat.p95:.3f} s, p99 {lat.p99:.3f} s, "
                f"max {lat.max:.3f} s"
            )
        calm = self.latency_outside_faults
        if self.faults and calm.count:
            lines.append(
                f"  latency outside the faults' windows ({calm.count} jobs): p50 {calm.p50:.3f} s, "
                f"p95 {calm.p95:.3f} s, p99 {calm.p99:.3f} s"
            )
        if self.rental is not None:
            r = self.rental
            lines.append(
                f"  rental: {r.get('journeys', 0)} journeys, {r.get('completed', 0)} completed, "
                f"{r.get('leases', 0)} leases checked, {r.get('events_seen', 0)} events"
            )
        lines.append("  checks:")
        for check in a.checks:
            mark = "ok  " if check.passed else "FAIL"
            lines.append(f"    [{mark}] {check.name}: {check.detail}")
        for label, ids in (("lost", a.lost_ids), ("doubled", a.doubled_ids), ("orphans", a.orphan_ids)):
            if ids:
                lines.append(f"  {label} (first {len(ids)}): {', '.join(ids[:10])}")
        for failure in a.failures[:5]:
            lines.append(f"  failure: {failure}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)
