"""The audit's anomalies under Jepsen's names, each caught on constructed inputs: lost, duplicated, unexpected,
aborted read and out of order (per key, by offset and by event time), and a clean run showing none."""

from __future__ import annotations

from simulator.domain.anomalies import KeyedRecord, aborted_reads, out_of_order
from simulator.domain.audit import AuditResult, EventSeen, ResultSeen, SentJob, reconcile


def sent(job_id: str) -> SentJob:
    return SentJob(job_id, "training", 100.0, True)


def result(job_id: str, offset: int, time: float, partition: int = 0) -> ResultSeen:
    return ResultSeen(job_id, "training", "completed", 101.0, "training.results", partition, offset, time=time)


def event(key: str, offset: int, time: float) -> EventSeen:
    return EventSeen("rental.events", 0, offset, f"e{offset}", "quartet.rental.X.v1", None, key, {}, 101.0, time)


def failed(audit: AuditResult) -> set[str]:
    return {c.name for c in audit.checks if not c.passed}


def test_a_clean_run_shows_no_anomaly() -> None:
    audit = reconcile(
        [sent("a"), sent("b")],
        [result("a", 0, 1.0), result("b", 1, 2.0)],
        [],
        [],
        events=[event("h1", 0, 1.0), event("h1", 1, 2.0)],
        aborted_ids=["probe-1"],
    )
    assert audit.passed, audit.checks
    an = audit.anomalies
    assert (an.lost, an.duplicated, an.unexpected, an.aborted_read, an.out_of_order) == (0, 0, 0, 0, 0)
    assert an.aborted_written == 1


def test_lost_duplicated_and_unexpected_are_counted_under_their_names() -> None:
    audit = reconcile(
        [sent("lost"), sent("twice")],
        [result("twice", 0, 1.0), result("twice", 1, 2.0), result("ghost", 2, 3.0)],
        [],
        [],
    )
    an = audit.anomalies
    assert (an.lost, an.duplicated, an.unexpected) == (1, 1, 1)
    assert audit.lost_ids == ["lost"] and audit.doubled_ids == ["twice"] and audit.orphan_ids == ["ghost"]
    assert failed(audit) == {"no accepted job lost", "no job has two results", "no result for a job never sent"}


def test_a_probe_of_an_aborted_transaction_read_as_committed_is_an_aborted_read_not_an_unexpected_result() -> None:
    audit = reconcile(
        [sent("a")], [result("a", 0, 1.0), result("probe-2", 1, 2.0)], [], [], aborted_ids=["probe-1", "probe-2"]
    )
    an = audit.anomalies
    assert an.aborted_read == 1 and an.aborted_read_ids == ["probe-2"]
    assert an.unexpected == 0 and an.aborted_written == 2
    assert failed(audit) == {"no aborted read"}
    assert aborted_reads(["a", "probe-2"], ["probe-1", "probe-2"]) == ["probe-2"]
    assert aborted_reads(["a"], ["probe-1"]) == []


def test_per_key_an_offset_read_backwards_is_out_of_order() -> None:
    records = [
        KeyedRecord("k", "t", 0, 5, 1.0),
        KeyedRecord("other", "t", 0, 6, 1.0),
        KeyedRecord("k", "t", 0, 3, 2.0),
    ]
    assert out_of_order(records) == ["key k: offset 3 read after 5 on t-0"]
    # The same offsets on two partitions are no order at all.
    assert out_of_order([KeyedRecord("k", "t", 0, 5, 1.0), KeyedRecord("k", "t", 1, 3, 2.0)]) == []


def test_per_key_a_time_that_goes_back_is_out_of_order_in_results_and_events() -> None:
    assert out_of_order([KeyedRecord("k", "t", 0, 1, 2.0), KeyedRecord("k", "t", 0, 2, 1.0)]) == [
        "key k: time 1.000 after 2.000 (t-0@2)"
    ]
    assert out_of_order([KeyedRecord("k", "t", 0, 1, 1.0), KeyedRecord("k", "t", 0, 2, 1.0)]) == []
    assert out_of_order([KeyedRecord("k", "t", 0, 1, None), KeyedRecord("k", "t", 0, 2, 1.0)]) == []
    events = reconcile([], [], [], [], events=[event("h1", 0, 5.0), event("h2", 1, 1.0), event("h1", 2, 4.0)])
    assert events.anomalies.out_of_order == 1 and failed(events) == {"per key, nothing out of order"}
    assert events.anomalies.out_of_order_keys[0].startswith("key h1: time 4.000 after 5.000")
    results = reconcile([sent("a")], [result("a", 0, 2.0), result("a", 1, 1.0)], [], [])
    assert results.anomalies.out_of_order == 1 and results.anomalies.duplicated == 1
