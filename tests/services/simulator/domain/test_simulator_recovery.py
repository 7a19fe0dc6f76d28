"""Recovery times read off a synthetic lag series: the baseline before a fault, the rise, the return within the
tolerance, the slowest of several groups, a fault that never disturbed the lag, and one never recovered."""

from __future__ import annotations

import pytest
from simulator.domain.recovery import RecoveryRule, fault_recovery, recovery_summary
from simulator.domain.report import FaultRecord, LagSeries

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
