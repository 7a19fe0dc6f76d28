"""Capacity search: the sustainable job rate, found the way TCP finds a link's.

Slow start doubles the offered rate each interval while p95 latency and consumer lag stay flat; the first
congested interval halves it (multiplicative decrease) and additive increase probes the knee from there; after
a few back-offs the highest rate that was flat is held, and it counts only if the lag does not grow over the
whole hold. The controller is pure: it is fed one interval's observation at a time and says the next rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

# A failed hold retries at no less than 10 % below the rate that failed, so a small increase step cannot
# turn the retries into a slow crawl down to the knee.
HOLD_RETRY_FACTOR = 0.9


class CapacityParams(BaseModel):
    """How the search probes: every value bounded so that a search always ends in a known time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_s: float = Field(5.0, ge=0.5, le=300.0, description="How long each offered rate is kept.")
    start_rate: float = Field(1.0, gt=0.0, le=1000.0, description="Jobs per second of the first interval.")
    increase_step: float = Field(1.0, gt=0.0, le=1000.0, description="Jobs per second added per flat interval (AIMD).")
    decrease_factor: float = Field(0.5, ge=0.1, le=0.95, description="Rate multiplier after a congested interval.")
    hold_s: float = Field(30.0, ge=0.0, le=3600.0, description="How long the final rate must hold without lag growing.")
    latency_factor: float = Field(3.0, ge=1.0, le=100.0, description="p95 may grow to this multiple of the baseline.")
    latency_slack_s: float = Field(0.5, ge=0.0, le=600.0, description="...or by this many seconds, whichever is more.")
    lag_slack_jobs: float = Field(2.0, ge=0.0, le=100_000.0, description="Lag growth per interval still called flat.")
    lag_slack_fraction: float = Field(
        0.1, ge=0.0, le=1.0, description="...or this fraction of the interval's offered jobs, whichever is more."
    )
    min_achieved_ratio: float = Field(
        0.7, ge=0.0, le=1.0, description="Achieved below this share of offered (beyond the jobs in flight): congested."
    )
    backoffs: int = Field(2, ge=1, le=20, description="Congested intervals in AIMD before the best flat rate is held.")
    max_rate: float = Field(200.0, gt=0.0, le=10_000.0, description="Never offer more jobs per second than this.")
    max_duration_s: float = Field(600.0, gt=0.0, le=86_400.0, description="The search ends by this time whatever.")

    @model_validator(mode="after")
    def _consistent(self) -> CapacityParams:
        if self.start_rate > self.max_rate:
            raise ValueError("start_rate must not exceed max_rate")
        if self.interval_s > self.max_duration_s:
            raise ValueError("interval_s must not exceed max_duration_s")
        return self

    @property
    def max_intervals(self) -> int:
        """The most intervals a search can take."""
        return max(1, math.ceil(self.max_duration_s / self.interval_s))

    @property
    def hold_intervals(self) -> int:
        """Intervals the final rate must hold for."""
        return max(1, math.ceil(self.hold_s / self.interval_s))

    @property
    def min_rate(self) -> float:
        """The lowest rate a decrease goes to."""
        return self.start_rate / 10


class Phase(StrEnum):
    """Where the search is."""

    SLOW_START = "slow start"
    AIMD = "aimd"
    HOLD = "hold"
    DONE = "done"


class Move(StrEnum):
    """What an interval's verdict did to the offered rate: the name a person watching the search reads."""

    SLOW_START = "slow start"
    ADDITIVE_INCREASE = "additive increase"
    MULTIPLICATIVE_DECREASE = "multiplicative decrease"
    STEADY = "steady"
    HOLD = "hold"
    DONE = "done"


class Signal(StrEnum):
    """What one interval said about the system."""

    FLAT = "flat"
    DRAINING = "draining"
    CONGESTED = "congested"


@dataclass(frozen=True)
class Observation:
    """One interval: the rate offered, the rate completed, the p95 latency of its results, the lag at its end."""

    offered: float
    achieved: float
    p95_s: float | None
    lag: int | None


class Step(BaseModel):
    """One interval of the search, for the report and the plot."""

    t_s: float
    phase: Phase
    offered: float
    achieved: float
    p95_s: float | None
    lag: int | None
    signal: Signal
    next_rate: float
    move: Move


class Verdict(BaseModel):
    """What the controller decided after an interval."""

    phase: Phase
    next_rate: float
    done: bool = False
    sustained_rate: float | None = None
    held: bool = False
    reason: str = ""


def move_of(phase: Phase, verdict: Verdict, offered: float) -> Move:
    """The move from an interval in `phase` offered at `offered` to what `verdict` decided."""
    if verdict.done:
        return Move.DONE
    if phase is Phase.HOLD or verdict.phase is Phase.HOLD:
        return Move.HOLD
    if verdict.next_rate > offered:
        return Move.SLOW_START if phase is Phase.SLOW_START else Move.ADDITIVE_INCREASE
    if verdict.next_rate < offered:
        return Move.MULTIPLICATIVE_DECREASE
    # A draining lag keeps the rate until the backlog is gone.
    return Move.STEADY


class CapacitySearch:
    """The state machine slow start → AIMD → hold → done; `observe` one interval at a time."""

    def __init__(self, params: CapacityParams) -> None:
        self.params = params
        self.phase = Phase.SLOW_START
        self.rate = params.start_rate
        self.steps: list[Step] = []
        self._best: float | None = None
        self._baseline: float | None = None
        self._prev_lag: int | None = None
        self._backoffs = 0
        self._hold_left = 0
        self._hold_lag: int | None = None
        self._verdict = Verdict(phase=self.phase, next_rate=self.rate)

    @property
    def verdict(self) -> Verdict:
        """The latest decision."""
        return self._verdict

    def observe(self, obs: Observation) -> Verdict:
        """Take one interval's observation; return the next rate, or the end of the search and its result."""
        if self.phase is Phase.DONE:
            return self._verdict
        signal = self._classify(obs)
        phase = self.phase
        verdict = self._hold(obs, signal) if phase is Phase.HOLD else self._probe(obs, signal)
        if not verdict.done and len(self.steps) + 1 >= self.params.max_intervals:
            verdict = self._finish(self._best, held=False, reason="out of time before a rate held")
        self._prev_lag = obs.lag if obs.lag is not None else self._prev_lag
        t_s = (len(self.steps) + 1) * self.params.interval_s
        move = move_of(phase, verdict, obs.offered)
        self.steps.append(
            Step(t_s=t_s, phase=phase, signal=signal, next_rate=verdict.next_rate, move=move, **obs.__dict__)
        )
        self._verdict = verdict
        return verdict

    def end(self, reason: str) -> Verdict:
        """End the search now (stopped, or out of wall-clock time): the best flat rate so far, not held."""
        if self.phase is not Phase.DONE:
            self._verdict = self._finish(self._best, held=False, reason=reason)
        return self._verdict

    def _classify(self, obs: Observation) -> Signal:
        p = self.params
        allowed = max(p.lag_slack_jobs, p.lag_slack_fraction * obs.offered * p.interval_s)
        growth = obs.lag - self._prev_lag if obs.lag is not None and self._prev_lag is not None else 0
        if growth > allowed:
            return Signal.CONGESTED
        if growth < -allowed:
            return Signal.DRAINING
        # The jobs sent in an interval's last moments finish after it (Little's law: about offered × latency are
        # in flight at its end, at least the last one sent); at a low rate that is a large share of a short
        # interval's few jobs, and no congestion.
        shortfall = (obs.offered - obs.achieved) * p.interval_s
        in_flight = max(1.0, obs.offered * (obs.p95_s or 0.0))
        if obs.achieved < p.min_achieved_ratio * obs.offered and shortfall > in_flight:
            return Signal.CONGESTED
        if obs.p95_s is not None and self._baseline is not None:
            limit = max(self._baseline * p.latency_factor, self._baseline + p.latency_slack_s)
            if obs.p95_s > limit:
                return Signal.CONGESTED
        if obs.p95_s is not None and self.phase is not Phase.HOLD:
            self._baseline = obs.p95_s if self._baseline is None else min(self._baseline, obs.p95_s)
        return Signal.FLAT

    def _probe(self, obs: Observation, signal: Signal) -> Verdict:
        p = self.params
        if signal is Signal.DRAINING:
            return self._next(self.rate)
        if signal is Signal.FLAT:
            self._best = max(self._best or 0.0, obs.offered)
            if obs.offered >= p.max_rate:
                return self._start_hold(p.max_rate, obs)
            grown = obs.offered * 2 if self.phase is Phase.SLOW_START else obs.offered + p.increase_step
            return self._next(min(p.max_rate, grown))
        self._backoffs += 1
        if self.phase is Phase.AIMD and self._backoffs > p.backoffs:
            return self._start_hold(self._best or max(p.min_rate, obs.offered * p.decrease_factor), obs)
        self.phase = Phase.AIMD
        return self._next(max(p.min_rate, obs.offered * p.decrease_factor))

    def _start_hold(self, rate: float, obs: Observation) -> Verdict:
        self.phase = Phase.HOLD
        self._hold_left = self.params.hold_intervals
        self._hold_lag = obs.lag
        return self._next(rate)

    def _hold(self, obs: Observation, signal: Signal) -> Verdict:
        p = self.params
        allowed = max(p.lag_slack_jobs, p.lag_slack_fraction * obs.offered * p.interval_s)
        grew = obs.lag is not None and self._hold_lag is not None and obs.lag - self._hold_lag > allowed
        if signal is Signal.CONGESTED or grew:
            if self.rate <= p.min_rate:
                return self._finish(None, held=False, reason="not even the lowest rate held")
            retry = max(p.min_rate, min(self.rate - p.increase_step, self.rate * HOLD_RETRY_FACTOR))
            return self._start_hold(retry, obs)
        self._hold_left -= 1
        if self._hold_left <= 0:
            return self._finish(self.rate, held=True, reason=f"held for {p.hold_intervals * p.interval_s:g} s")
        return self._next(self.rate)

    def _next(self, rate: float) -> Verdict:
        self.rate = rate
        return Verdict(phase=self.phase, next_rate=rate)

    def _finish(self, rate: float | None, *, held: bool, reason: str) -> Verdict:
        self.phase = Phase.DONE
        return Verdict(phase=Phase.DONE, next_rate=0.0, done=True, sustained_rate=rate, held=held, reason=reason)
