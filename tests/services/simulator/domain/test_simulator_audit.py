"""The audit's reconciliation rules, with fake inputs: lost, doubled, orphans, garbage, failures, latency."""

from __future__ import annotations

import pytest
from simulator.domain.audit import (
    AuditPolicy,
    Check,
    CorruptRecord,
    DeadLetterSeen,
    GarbageSent,
    RentalFindings,
    ResultSeen,
    SentJob,
    reconcile,
)


def sent(job_id: str, kind: str = "training", at: float = 100.0, accepted: bool = True, publishes: int = 1) -> SentJob:
    return SentJob(job_id, kind, at, accepted, publishes)


def result(job_id: str, at: float, kind: str = "training", outcome: str = "completed", offset: int = 0) -> ResultSeen:
    return ResultSeen(
        job_id, kind, outcome, at, f"{kind}.results", 0, offset, detail="boom" if outcome != "completed" else None
    )


def garbage(key: str, kind: str = "training", accepted: bool = True, flavour: str = "bytes") -> GarbageSent:
    return GarbageSent(key, kind, flavour, f"{kind}.jobs", accepted)


def letter(key: str, topic: str = "training.jobs.dlq") -> DeadLetterSeen:
    return DeadLetterSeen(key, topic, topic.removesuffix(".dlq"), "EnvelopeError", None, 101.0)


def check(audit_checks: list[Check], name: str) -> Check:
    return next(c for c in audit_checks if c.name == name)


def test_every_job_with_exactly_one_result_passes() -> None:
    audit = reconcile(
        [sent("a"), sent("b", "planning", publishes=2)],
        [result("a", 101), result("b", 102.5, "planning")],
        [garbage("g1")],
        [letter("g1")],
    )
    assert audit.passed, audit.checks
    assert audit.jobs.submitted == 2 and audit.jobs.with_result == 2
    assert audit.jobs.duplicate_publishes == 1
    assert audit.per_kind["planning"].duplicate_publishes == 1
    assert audit.garbage.in_dlq == 1


def test_an_accepted_job_without_result_is_lost() -> None:
    audit = reconcile([sent("a"), sent("b")], [result("a", 101)], [], [])
    assert not audit.passed
    assert audit.jobs.lost == 1 and audit.lost_ids == ["b"]
    assert not check(audit.checks, "no accepted job lost").passed


def test_an_unacknowledged_job_without_result_is_not_lost() -> None:
    audit = reconcile([sent("a", accepted=False)], [], [], [])
    assert audit.passed
    assert audit.jobs.unconfirmed == 1 and audit.jobs.lost == 0


def test_an_unacknowledged_job_that_got_a_result_counts_as_delivered() -> None:
    audit = reconcile([sent("a", accepted=False)], [result("a", 101)], [], [])
    assert audit.passed and audit.jobs.with_result == 1


def test_two_results_for_one_job_are_doubled() -> None:
    audit = reconcile([sent("a")], [result("a", 103, offset=5), result("a", 101, offset=2)], [], [])
    assert not audit.passed
    assert audit.doubled_ids == ["a"] and audit.jobs.doubled == 1
    # Latency counts from the first result.
    assert audit.latency["all"].p50 == pytest.approx(1.0)


def test_a_result_for_a_job_never_sent_is_an_orphan_unless_ignored() -> None:
    results = [result("a", 101), result("ghost", 101)]
    failing = reconcile([sent("a")], results, [], [])
    assert not failing.passed and failing.orphan_ids == ["ghost"]
    ignoring = reconcile([sent("a")], results, [], [], policy=AuditPolicy(foreign_results="ignore"))
    assert ignoring.passed and ignoring.orphans == 1


def test_the_failed_result_of_a_dead_lettered_garbage_job_is_no_orphan_but_two_are_doubled() -> None:
    answered = [result("g1", 101, outcome="failed")]
    audit = reconcile([], answered, [garbage("g1", flavour="schema")], [letter("g1")])
    assert audit.passed and audit.orphans == 0
    twice = reconcile([], [*answered, result("g1", 102, outcome="failed", offset=1)], [garbage("g1")], [letter("g1")])
    assert not twice.passed and twice.doubled_ids == ["g1"]


def test_garbage_missing_from_its_dead_letter_topic_fails() -> None:
    audit = reconcile([], [], [garbage("g1"), garbage("g2"), garbage("g3", accepted=False)], [letter("g1")])
    assert not audit.passed
    assert audit.missing_garbage == ["g2"]
    assert audit.garbage.in_dlq == 1 and audit.garbage.accepted == 2


def test_garbage_in_the_wrong_dead_letter_topic_is_misrouted() -> None:
    audit = reconcile([], [], [garbage("g1", "planning")], [letter("g1", "training.jobs.dlq")])
    assert not audit.passed
    assert audit.garbage.misrouted == 1 and audit.garbage.in_dlq == 0


def test_garbage_counts_by_flavour() -> None:
    audit = reconcile([], [], [garbage("a"), garbage("b", flavour="schema"), garbage("c", flavour="schema")], [])
    assert audit.garbage.by_flavour == {"bytes": 1, "schema": 2}


def test_failed_outcomes_fail_only_when_success_is_expected() -> None:
    results = [result("a", 101, outcome="failed")]
    strict = reconcile([sent("a")], results, [], [])
    assert not strict.passed and strict.failures == ["training job a: failed: boom"]
    assert strict.jobs.failed == 1
    lenient = reconcile([sent("a")], results, [], [], policy=AuditPolicy(expect_success=False))
    assert lenient.passed


def test_corrupt_records_fail_the_audit() -> None:
    audit = reconcile([sent("a")], [result("a", 101)], [], [], [CorruptRecord("training.results", 0, 7, "bad")])
    assert not audit.passed and audit.corrupt == 1


def test_a_dead_lettered_job_is_reported() -> None:
    dead = DeadLetterSeen("a", "training.jobs.dlq", "training.jobs", "SchemaError", "a", 101)
    audit = reconcile([sent("a")], [], [], [dead])
    assert audit.dead_lettered_jobs == ["a"] and audit.jobs.dead_lettered == 1 and audit.jobs.lost == 1


def test_latency_percentiles_per_kind_and_overall() -> None:
    jobs = [sent(f"t{i}", "training", at=0.0) for i in range(100)] + [sent("p", "planning", at=0.0)]
    results = [result(f"t{i}", float(i + 1)) for i in range(100)] + [result("p", 50.0, "planning")]
    audit = reconcile(jobs, results, [], [])
    t = audit.latency["training"]
    assert t.count == 100
    assert t.p50 == pytest.approx(50.5) and t.p95 == pytest.approx(95.05) and t.p99 == pytest.approx(99.01)
    assert t.max == 100.0
    assert audit.latency["planning"].p50 == 50.0
    assert audit.latency["all"].count == 101


def test_rental_findings_become_checks() -> None:
    bad = RentalFindings(checked=True, leases=3, overlapping_leases=["house 1: lease 1 and 2"], events_seen=9)
    audit = reconcile([], [], [], [], rental=bad)
    assert not check(audit.checks, "no house has overlapping leases").passed
    assert check(audit.checks, "rental events match the database").passed
    down = reconcile([], [], [], [], rental=RentalFindings(checked=True, unavailable="database unreachable"))
    assert not down.passed and check(down.checks, "rental checks ran").detail == "database unreachable"
    skipped = reconcile([], [], [], [], rental=RentalFindings())
    assert skipped.passed and len(skipped.checks) == 8


def test_extra_checks_count() -> None:
    audit = reconcile([], [], [], [], extra_checks=[Check(name="faults", passed=False, detail="1 of 2")])
    assert not audit.passed


def test_jobs_with_large_results_are_counted_apart_per_kind_lost_and_doubled_included() -> None:
    jobs = [
        SentJob("small", "training", 100.0, True),
        SentJob("big-t", "training", 100.0, True, large=True),
        SentJob("big-t2", "training", 100.0, True, large=True),
        SentJob("big-p", "planning", 100.0, True, large=True),
        SentJob("big-p2", "planning", 100.0, False, large=True),
    ]
    audit = reconcile(
        jobs,
        [
            result("small", 101),
            result("big-t", 102, offset=1),
            result("big-t", 103, offset=2),
            result("big-p", 104, "planning"),
        ],
        [],
        [],
    )
    training, planning = audit.large["training"], audit.large["planning"]
    assert (training.submitted, training.accepted, training.completed, training.lost, training.doubled) == (
        2,
        2,
        1,
        1,
        1,
    )
    assert (planning.submitted, planning.accepted, planning.unconfirmed, planning.completed, planning.lost) == (
        2,
        1,
        1,
        1,
        0,
    )
    assert audit.per_kind["training"].submitted == 3
    assert reconcile([SentJob("small", "training", 100.0, True)], [result("small", 101)], [], []).large == {}
