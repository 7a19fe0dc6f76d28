"""The live audit's running tally and its charts' timeline, on plain records: the counting rules, the latency
and lag series with faults marked, and memory that stays bounded however long the console runs."""

from __future__ import annotations

import tracemalloc

from simulator.console.feed import REQUEST_TYPES
from simulator.console.tally import LiveTally
from simulator.console.timeline import FaultMark, Timeline
from simulator.domain.audit import DeadLetterSeen, EventSeen, ResultSeen

TRAINING = next(t for t, k in REQUEST_TYPES.items() if k == "training")
PLANNING = next(t for t, k in REQUEST_TYPES.items() if k == "planning")


def request(
    job_id: str, ce_type: str = TRAINING, at: float = 100.0, data: dict[str, object] | None = None
) -> EventSeen:
    return EventSeen("training.jobs", 0, 0, f"ce-{job_id}", ce_type, job_id, job_id, data or {}, at=at)


def outcome(job_id: str, what: str = "completed", at: float = 101.0, offset: int = 0) -> ResultSeen:
    return ResultSeen(job_id, "training", what, at, "training.results", 0, offset)


def letter() -> DeadLetterSeen:
    return DeadLetterSeen("g", "training.jobs.dlq", "training.jobs", "EnvelopeError", None, 100.0)


def test_only_job_requests_count_as_accepted_once_per_job() -> None:
    tally = LiveTally(REQUEST_TYPES, lost_after_s=1000)

    tally.take([], [], [request("a"), request("b", PLANNING, data={"scenario": {}})])
    tally.take([], [], [request("a", at=150.0), request("c", "quartet.other.Thing.v1")])

    assert tally.accepted == 2 and list(tally.pending) == ["a", "b"]
    assert tally.specs == {"b": {"scenario": {}}}


def test_the_tally_counts_outcomes_in_flight_lost_doubled_and_dead_letters() -> None:
    tally = LiveTally(REQUEST_TYPES, lost_after_s=150.0)
    tally.take([], [], [request(j) for j in ("done", "twice", "bad", "slow")] + [request("old", at=0.0)])
    tally.take([outcome("done"), outcome("twice"), outcome("bad", "failed"), outcome("x")], [letter()], [])
    tally.take([outcome("twice", offset=1)], [], [])

    view = tally.view(now=200.0)

    assert (view.accepted, view.completed, view.failed, view.in_flight, view.lost) == (5, 2, 1, 1, 1)
    assert view.doubled == 1 and view.doubled_ids == ("twice",)
    assert view.lost_ids == ("old",)
    assert view.dead_lettered == 1


def test_an_outcome_read_before_its_request_waits_for_it_and_a_late_outcome_ends_a_lost_job() -> None:
    tally = LiveTally(REQUEST_TYPES, lost_after_s=10.0)

    tally.take([outcome("early"), outcome("early", offset=1)], [], [])
    assert tally.view(now=101.0).accepted == 0
    tally.take([], [], [request("early"), request("late")])
    assert tally.view(now=500.0).lost == 1
    tally.take([outcome("late", at=400.0)], [], [])

    view = tally.view(now=500.0)
    assert (view.accepted, view.completed, view.doubled, view.lost, view.in_flight) == (2, 2, 1, 0, 0)


def test_nothing_seen_is_an_all_zero_audit() -> None:
    view = LiveTally(REQUEST_TYPES, lost_after_s=1.0).view(now=0.0)

    assert view.as_dict() == {
        "accepted": 0,
        "completed": 0,
        "failed": 0,
        "in_flight": 0,
        "lost": 0,
        "doubled": 0,
        "dead_lettered": 0,
        "lost_ids": (),
        "doubled_ids": (),
        "forgotten": 0,
    }


def test_the_timeline_has_rates_latency_percentiles_and_lag_per_bucket_and_marks_faults() -> None:
    tally = LiveTally(REQUEST_TYPES, lost_after_s=1000, timeline=Timeline(bucket_s=5.0, buckets=10))
    tally.take([], [], [request(f"j{i}", at=100.0 + i * 0.1) for i in range(10)])
    tally.take([outcome(f"j{i}", at=111.0 + i * 0.1) for i in range(10)], [], [])
    tally.timeline.lag(101.0, {"training.jobs-worker": 7})
    tally.timeline.lag(103.0, {"training.jobs-worker": 3})
    faults = [FaultMark("kill worker", 106.0, 107.5), FaultMark("broker restart", 112.0), FaultMark("old", 1.0, 2.0)]

    chart = tally.timeline.chart(now=115.0, faults=faults)

    assert chart["t"] == [100_000, 105_000, 110_000]
    assert chart["accepted"] == [2.0, 0.0, 0.0] and chart["completed"] == [0.0, 0.0, 2.0]
    assert chart["p50"] == [None, None, 11.0] and chart["p95"] == [None, None, 11.0]
    assert chart["lag"] == {"training.jobs-worker": [7, None, None]}
    assert chart["faults"] == [
        {"name": "kill worker", "start": 106_000, "end": 107_500, "ongoing": False, "ok": True},
        {"name": "broker restart", "start": 112_000, "end": 115_000, "ongoing": True, "ok": True},
    ]


def test_the_newest_bucket_is_a_rate_over_the_part_that_has_passed() -> None:
    timeline = Timeline(bucket_s=10.0, buckets=5)
    for _ in range(4):
        timeline.accepted(100.5)

    assert timeline.chart(now=102.0)["accepted"] == [2.0]
    assert timeline.chart(now=200.0)["accepted"] == [0.4]


def test_the_timeline_keeps_only_its_window_and_a_bounded_latency_sample_per_bucket() -> None:
    timeline = Timeline(bucket_s=1.0, buckets=30, samples=50)
    for second in range(1000):
        for i in range(100):
            timeline.outcome(second + i / 100, completed=True, latency_s=float(i))
    timeline.accepted(5.0)

    chart = timeline.chart(now=1000.0)

    assert len(timeline) == 30 and chart["t"][0] == 970_000 and chart["completed"][0] == 100.0
    assert max(len(b.latencies) for b in timeline.window) == 50
    assert 25 <= chart["p50"][0] <= 75 and sum(chart["accepted"]) == 0


def test_a_long_run_keeps_the_tally_bounded_and_its_counts_right() -> None:
    tally = LiveTally(REQUEST_TYPES, lost_after_s=60.0, max_jobs=1000, timeline=Timeline(bucket_s=1.0, buckets=60))

    def feed(start: int, jobs: int) -> None:
        for n in range(start, start + jobs, 500):
            batch = range(n, n + 500)
            tally.take([], [], [request(f"job-{i}", at=float(i), data={"spec": "x" * 100}) for i in batch])
            # One in a hundred never finishes; the rest finish two seconds later.
            tally.take([outcome(f"job-{i}", at=i + 2.0) for i in batch if i % 100], [letter()], [])

    feed(0, 20_000)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    feed(20_000, 100_000)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()

    view = tally.view(now=120_000.0)
    assert (view.accepted, view.completed, view.lost, view.in_flight) == (120_000, 118_800, 1200, 0)
    assert view.dead_lettered == 240 and view.doubled == 0
    assert len(tally.pending) <= 1000 and len(tally.finished) <= 1000 and len(tally.early) == 0
    assert len(tally.timeline) == 60 and len(tally.specs) == 0
    assert view.forgotten == 118_800 - 1000 and view.lost == len(tally.pending) + tally.expired
    # Five times the jobs, and the memory held stays what a thousand ids and a minute of buckets take.
    assert grown < 1_000_000, f"the tally grew by {grown} bytes over 100,000 jobs"
