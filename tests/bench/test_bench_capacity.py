"""The capacity bench's Markdown section: one row per worker count, and the gain of the second worker."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from simulator.capacity import CapacityReport, CapacityRun
from simulator.domain.capacity import Move, Phase, Signal, Step, Verdict

from tests.support.bench import load_bench


def load(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """bench/bench_capacity.py as a module."""
    return load_bench("bench_capacity", monkeypatch)


def report(workers: int, rate: float | None, p95: float) -> CapacityReport:
    """A search that held `rate` (or none) for two 10 s intervals at the given p95."""
    steps = [
        Step(
            t_s=10.0 * i,
            phase=Phase.HOLD,
            offered=rate or 1.0,
            achieved=rate or 0.5,
            p95_s=p95,
            lag=0,
            signal=Signal.FLAT,
            next_rate=rate or 1.0,
            move=Move.HOLD,
        )
        for i in (1, 2)
    ]
    verdict = Verdict(
        phase=Phase.DONE,
        next_rate=0.0,
        done=True,
        sustained_rate=rate,
        held=rate is not None,
        reason="held for 20 s" if rate else "not even the lowest rate held",
    )
    run = CapacityRun(workers=workers, interval_s=10, hold_s=20)
    return CapacityReport(started_at=datetime.now(UTC), params=run, verdict=verdict, steps=steps)


def test_each_worker_count_has_a_row_and_the_gain_is_their_ratio(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load(monkeypatch)
    section = module.markdown({2: report(2, 15.0, 0.8), 1: report(1, 6.0, 0.5)}, Path("/w"))
    rows = [line for line in section.splitlines() if line.startswith(("| 1 |", "| 2 |"))]
    assert rows == [
        "| 1 | 6.00 | yes | 0.50 | 2 × 10 s | held for 20 s |",
        "| 2 | 15.00 | yes | 0.80 | 2 × 10 s | held for 20 s |",
    ]
    assert "2 workers per service sustain **2.50×** the rate of 1." in section
    assert "![capacity search, 1 worker(s) per service](figures/capacity_workers_1.png)" in section
    assert "![capacity search, 2 worker(s) per service](figures/capacity_workers_2.png)" in section


def test_a_search_that_held_nothing_shows_a_dash_and_no_gain(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load(monkeypatch)
    section = module.markdown({1: report(1, None, 3.0), 2: report(2, 4.0, 0.4)}, Path("/w"))
    assert "| 1 | – | no | – | 2 × 10 s | not even the lowest rate held |" in section
    assert "the rate of 1" not in section


def test_a_rate_that_did_not_hold_is_not_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load(monkeypatch)
    unheld = report(1, 27.0, 0.2).model_copy(
        update={
            "verdict": Verdict(phase=Phase.DONE, next_rate=0.0, done=True, sustained_rate=27.0, reason="out of time")
        }
    )
    section = module.markdown({1: unheld, 2: report(2, 23.0, 0.3)}, Path("/w"))
    assert "| 1 | 27.00 | no |" in section
    assert "the rate of 1" not in section


def test_the_quick_search_is_shorter_and_both_are_bounded_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load(monkeypatch)
    quick, full = module.params(2, quick=True), module.params(2, quick=False)
    assert quick.workers == full.workers == 2
    assert quick.max_duration_s < full.max_duration_s
    assert module.time_bound_s(quick=False) == 2 * (900 + 10 + 90 + 35 + 120)
    assert module.time_bound_s(quick=True) < 15 * 60
    section = module.markdown({1: report(1, 6.0, 0.5)}, Path("/w"))
    assert "1 worker(s): 10 s intervals, 20 s hold, at most 600 s." in section
