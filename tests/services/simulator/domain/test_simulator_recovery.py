"""Recovery times read off a synthetic lag series: the baseline before a fault, the rise, the return within the
tolerance, the slowest of several groups, a fault that never disturbed the lag, and one never recovered; each
fault's window, and the latency of the jobs that lived outside every window."""

from __future__ import annotations

import math

import pytest
from simulator.domain.audit import ResultSeen, SentJob
from simulator.domain.recovery import RecoveryRule, fault_recovery, fault_windows, outside_windows, recovery_summary
from simulator.domain.report import FaultRecord, LagSeries
from simulator.reporting import latency_outside

KILL = FaultRecord(kind="kill_worker", at_s=10.0, end_s=10.1)


def series(values: list[int | None], group: str = "g", step: float = 1.0) -> LagSeries:
    return LagSeries(group=group, t_s=[i * step for i in range(len(values))], lag=values)


def test_the_recovery_runs_from_the_fault_to_the_first_sample_back_within_the_tolerance() -> None:
    # Lag about 3 before the fault (max 4 in the 5 s window), up to 40, back to 6 = 4 + 2 at t = 17.
    lag = series([3, 3, 3, 3, 3, 3, 2, 4, 3, 3, 3, 12, 25, 40, 30, 18, 9, 6, 3, 3])
    r = fault_recovery(KILL, [lag])
    assert r.baseline == 4 and r.limit == 6 and r.disturbed and r.peak == 40
    assert r.recovered_at_s == 17.0 and r.recovery_s == pytest.approx(7.0)


def test_the_tolerance_is_a_share_of_a_large_baseline() -> None:
    rule = RecoveryRule(window_s=5, tolerance_records=2, tolerance_share=0.1)
    assert rule.limit(0) == 2 and rule.limit(100) == 110
    lag = series([100] * 11 + [200, 150, 111, 109])
    assert fault_recovery(KILL, [lag], rule).recovered_at_s == 14.0


def test_an_unreadable_lag_counts_as_not_back_and_the_slowest_group_decides() -> None:
    broker = FaultRecord(kind="broker_restart", at_s=10.0, end_s=13.0)
    fast = series([0] * 11 + [None, None, 5, 0, 0, 0, 0], group="fast")
    slow = series([0] * 11 + [None, None, 9, 8, 5, 1, 0], group="slow")
    assert fault_recovery(broker, [fast]).recovery_s == pytest.approx(4.0)
    both = fault_recovery(broker, [fast, slow])
    assert both.recovery_s == pytest.approx(6.0) and both.peak == 9


def test_a_fault_that_never_moved_the_lag_recovered_when_it_ended_and_one_never_back_has_no_time() -> None:
    pause = FaultRecord(kind="pause_worker", at_s=10.0, end_s=12.5)
    calm = fault_recovery(pause, [series([1] * 30)])
    assert not calm.disturbed and calm.recovery_s == pytest.approx(2.5)
    stuck = fault_recovery(KILL, [series([0] * 11 + [10] * 10)])
    assert stuck.disturbed and stuck.recovery_s is None and stuck.recovered_at_s is None


def test_the_summary_gives_p50_and_max_and_counts_the_unrecovered() -> None:
    lag = [series([0] * 10 + [5, 0] + [0] * 8 + [7, 7, 7, 0] + [0] * 6 + [9] * 5)]
    faults = [
        FaultRecord(kind="kill_worker", at_s=9.5, end_s=9.6),
        FaultRecord(kind="kill_worker", at_s=19.5, end_s=19.6),
        FaultRecord(kind="kill_worker", at_s=29.5, end_s=29.6),
        FaultRecord(kind="kill_worker", at_s=31.0, end_s=31.0, ok=False),
    ]
    summary = recovery_summary(faults, lag)
    assert [f.recovery_s for f in summary.faults] == [pytest.approx(1.5), pytest.approx(3.5), None]
    assert summary.unrecovered == 1 and summary.times.count == 2
    assert summary.times.p50 == pytest.approx(2.5) and summary.times.max == pytest.approx(3.5)


def test_a_fault_window_runs_from_its_start_to_the_lag_back_and_forever_when_never_back() -> None:
    lag = [series([0] * 10 + [5, 5, 0] + [0] * 8 + [9] * 5)]
    faults = [FaultRecord(kind="kill_worker", at_s=9.5, end_s=9.6), FaultRecord(kind="kill_worker", at_s=20.5)]
    windows = fault_windows(recovery_summary(faults, lag))
    assert windows == [(9.5, 12.0), (20.5, math.inf)]
    assert outside_windows(1.0, 9.0, windows) and outside_windows(12.5, 20.0, windows)
    assert not outside_windows(8.0, 10.0, windows)  # answered during the first fault
    assert not outside_windows(8.0, 13.0, windows)  # the fault came and went during its life
    assert not outside_windows(30.0, 31.0, windows)  # after a fault never recovered


def test_the_latency_outside_the_faults_counts_only_jobs_whose_whole_life_missed_every_window() -> None:
    t0 = 1000.0
    sent = [SentJob(f"j{i}", "training", t0 + i, accepted=True) for i in range(10)]
    # j0-j3 answered in 1 s; j4-j7 in 5 s (through the fault from 5 s to 8 s); j8 twice; j9 never.
    results = [ResultSeen(f"j{i}", "training", "completed", t0 + i + (1 if i < 4 else 5), "r", 0, i) for i in range(9)]
    results.append(ResultSeen("j8", "training", "completed", t0 + 30, "r", 0, 9))
    calm = latency_outside(sent, results, t0, [(5.0, 8.0)])
    # j0-j3 (1 s each) end by 4 s; j4-j7 meet the window; j8 (8 s to 13 s) starts at its end and meets it.
    assert calm.count == 4 and calm.p50 == pytest.approx(1.0) and calm.max == pytest.approx(1.0)
    assert latency_outside(sent, results, t0, []).count == 9
