"""The capacity search against a queue with a known capacity: it ends near that capacity, and always ends."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pydantic import ValidationError
from simulator.domain.capacity import CapacityParams, CapacitySearch, Move, Observation, Phase, Signal, Verdict


@dataclass
class QueueSystem:
    """A single queue served at `capacity` jobs/s, each job taking `service_s`: the latency is the wait plus that."""

    capacity: float
    service_s: float = 0.2
    backlog: float = 0.0

    def interval(self, offered: float, seconds: float) -> Observation:
        """Offer `offered` jobs/s for `seconds`; what the simulator would measure."""
        self.backlog += offered * seconds
        done = min(self.backlog, self.capacity * seconds)
        self.backlog -= done
        wait = self.backlog / self.capacity
        return Observation(
            offered=offered, achieved=done / seconds, p95_s=self.service_s + wait, lag=round(self.backlog)
        )


def search(system: QueueSystem, params: CapacityParams) -> tuple[CapacitySearch, Verdict]:
    controller = CapacitySearch(params)
    verdict = controller.verdict
    for _ in range(params.max_intervals + 1):
        verdict = controller.observe(system.interval(controller.rate, params.interval_s))
        if verdict.done:
            return controller, verdict
    raise AssertionError(f"the search did not end within {params.max_intervals} intervals")


@pytest.mark.parametrize("capacity", [3.0, 20.0, 57.0, 140.0])
def test_the_search_holds_a_rate_just_below_the_capacity(capacity: float) -> None:
    """Within 15 % of the capacity or one increase step below it, whichever is wider: the step is the resolution."""
    params = CapacityParams(max_duration_s=3000)
    controller, verdict = search(QueueSystem(capacity), params)
    assert verdict.held, verdict.reason
    assert verdict.sustained_rate is not None
    assert capacity - max(0.15 * capacity, params.increase_step) <= verdict.sustained_rate <= capacity
    phases = [s.phase for s in controller.steps]
    assert phases[0] is Phase.SLOW_START
    assert Phase.AIMD in phases
    assert phases[-1] is Phase.HOLD


def test_slow_start_doubles_while_flat_and_backs_off_multiplicatively() -> None:
    controller, _ = search(QueueSystem(20.0), CapacityParams(max_duration_s=3000))
    offered = [s.offered for s in controller.steps]
    assert offered[:6] == [1, 2, 4, 8, 16, 32]
    assert controller.steps[5].signal is Signal.CONGESTED
    assert controller.steps[5].next_rate == 16


def test_a_system_faster_than_the_maximum_rate_holds_the_maximum() -> None:
    _, verdict = search(QueueSystem(1000.0), CapacityParams(max_rate=50, hold_s=10))
    assert verdict.held and verdict.sustained_rate == 50


def test_running_out_of_time_ends_with_the_best_flat_rate_unheld() -> None:
    controller, verdict = search(QueueSystem(20.0), CapacityParams(max_duration_s=30))
    assert len(controller.steps) == 6
    assert not verdict.held
    assert verdict.sustained_rate == 16
    assert "out of time" in verdict.reason


def test_a_system_that_takes_nothing_ends_without_a_rate() -> None:
    _, verdict = search(QueueSystem(0.01), CapacityParams(max_duration_s=3000))
    assert verdict.done
    assert not verdict.held
    assert verdict.sustained_rate is None or verdict.sustained_rate <= 0.01


def test_each_step_names_its_move_slow_start_then_additive_increase_and_multiplicative_decrease() -> None:
    controller, _ = search(QueueSystem(20.0), CapacityParams(max_duration_s=3000))
    moves = [s.move for s in controller.steps]
    assert moves[:6] == [Move.SLOW_START] * 5 + [Move.MULTIPLICATIVE_DECREASE]
    for step in controller.steps:
        if step.move is Move.ADDITIVE_INCREASE:
            assert step.phase is Phase.AIMD and step.next_rate == step.offered + 1
        if step.move is Move.MULTIPLICATIVE_DECREASE:
            assert step.next_rate == step.offered / 2
    assert Move.ADDITIVE_INCREASE in moves
    assert moves[-1] is Move.DONE
    assert set(moves[moves.index(Move.HOLD) : -1]) == {Move.HOLD}


def test_the_jobs_still_in_flight_at_a_short_intervals_end_are_no_congestion() -> None:
    controller = CapacitySearch(CapacityParams(interval_s=3))
    first = controller.observe(Observation(1, 2 / 3, 1.8, 0))
    controller.observe(Observation(2, 2, 0.1, 0))
    short = controller.observe(Observation(4, 1, 0.1, 0))
    assert controller.steps[0].signal is Signal.FLAT and first.next_rate == 2
    assert controller.steps[2].signal is Signal.CONGESTED and short.phase is Phase.AIMD


def test_an_interval_with_no_result_at_all_is_congested() -> None:
    controller = CapacitySearch(CapacityParams(interval_s=2))
    verdict = controller.observe(Observation(1, 0, None, 0))
    assert controller.steps[0].signal is Signal.CONGESTED and verdict.next_rate == 0.5


def test_a_draining_lag_keeps_the_rate_steady() -> None:
    controller = CapacitySearch(CapacityParams())
    controller.observe(Observation(1, 1, 0.2, 50))
    verdict = controller.observe(Observation(2, 2, 0.2, 10))
    assert controller.steps[-1].signal is Signal.DRAINING
    assert controller.steps[-1].move is Move.STEADY and verdict.next_rate == 2


def test_ending_early_reports_the_best_flat_rate_unheld_and_only_once() -> None:
    controller = CapacitySearch(CapacityParams())
    for rate in (1, 2, 4):
        controller.observe(Observation(rate, rate, 0.2, 0))
    verdict = controller.end("stopped before a rate held")
    assert (verdict.done, verdict.held, verdict.sustained_rate) == (True, False, 4)
    assert controller.end("another reason") == verdict
    assert controller.observe(Observation(8, 8, 0.2, 0)) == verdict


def test_observing_after_the_end_changes_nothing() -> None:
    controller, verdict = search(QueueSystem(1000.0), CapacityParams(max_rate=4, hold_s=5))
    steps = len(controller.steps)
    assert controller.observe(Observation(4, 0, 99.0, 10_000)) == verdict
    assert len(controller.steps) == steps


@pytest.mark.parametrize(
    "bad",
    [
        {"decrease_factor": 1.0},
        {"interval_s": 0.0},
        {"start_rate": 10, "max_rate": 5},
        {"interval_s": 60, "max_duration_s": 30},
        {"backoffs": 0},
        {"surprise": 1},
    ],
)
def test_unsafe_parameters_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        CapacityParams.model_validate(bad)
