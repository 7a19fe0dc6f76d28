"""The run's timetable: time order, insertion order on ties, failures reported without stopping the rest."""

from __future__ import annotations

import threading

from simulator.schedule import Schedule


def _play(schedule: Schedule, stop: threading.Event | None = None) -> list[tuple[float, str]]:
    errors: list[tuple[float, str]] = []
    schedule.play(
        stop or threading.Event(), 0.0, lambda _elapsed: None, lambda when, exc: errors.append((when, str(exc)))
    )
    return errors


def test_actions_run_in_time_order_and_ties_in_the_order_they_were_added() -> None:
    ran: list[str] = []
    schedule = Schedule()
    schedule.at(0.02, lambda: ran.append("late"))
    schedule.at(0.0, lambda: ran.append("first"))
    schedule.at(0.0, lambda: ran.append("second"))
    schedule.at(0.01, lambda: ran.append("middle"))
    assert _play(schedule) == []
    assert ran == ["first", "second", "middle", "late"]


def test_a_failing_action_is_reported_and_the_later_ones_still_run() -> None:
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("publish refused")

    schedule = Schedule()
    schedule.at(0.0, broken)
    schedule.at(0.01, lambda: ran.append("after"))
    assert _play(schedule) == [(0.0, "publish refused")]
    assert ran == ["after"]


def test_a_stopped_schedule_runs_nothing_more() -> None:
    ran: list[str] = []
    stop = threading.Event()
    schedule = Schedule()
    schedule.at(0.0, stop.set)
    schedule.at(0.0, lambda: ran.append("never"))
    schedule.at(3600.0, lambda: ran.append("never either"))
    assert _play(schedule, stop) == []
    assert ran == []
