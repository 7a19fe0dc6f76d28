"""The capacity search against a queue with a known capacity: it ends near that capacity, and always ends."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pydantic import ValidationError
from simulator.domain.capacity import CapacityParams, CapacitySearch, Observation, Phase, Signal, Verdict


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
