"""The seeded plan of a run: which action happens when, which job spec, which duplicates, garbage and faults.

Everything random is drawn here, before the run starts, from independent streams of one seed (one stream
per purpose, so adding a fault never moves an arrival). The same scenario and seed always give the same
plan, and `Plan.digest()` proves it in the report.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from simulator.domain.rates import arrival_times
from simulator.domain.scenario import (
    DuplicateFault,
    GarbageFault,
    GarbageFlavour,
    JobKindName,
    PlanningAction,
    RentalAction,
    Scenario,
    ThinkTime,
    TimedFault,
    TrainingAction,
)

# A rental journey's steps, each preceded by the tenant's (or landlord's) think time.
JOURNEY_STEPS = ("search", "view_house", "book_viewing", "apply", "approve", "issue_bill", "pay_bill", "repair")
SEED_BOUND = 2**31

_ARRIVALS, _MIX, _JOBS, _JOURNEYS, _DUPLICATES, _GARBAGE, _FAULTS = range(7)


def _stream(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def think(dist: ThinkTime, rng: np.random.Generator, size: int | None = None) -> Any:
    """Draw think times (seconds) from `dist`."""
    if dist.distribution == "exponential":
        return rng.exponential(dist.mean_s, size=size)
    return rng.uniform(dist.min_s, dist.max_s, size=size) if dist.max_s > dist.min_s else _fill(dist.min_s, size)


def _fill(value: float, size: int | None) -> Any:
    return value if size is None else np.full(size, value)


@dataclass(frozen=True)
class PlannedJob:
    """A job submission: when the user arrives, what kind, which pool spec, its seed and the pause first."""

    index: int
    at_s: float
    kind: JobKindName
    mix_index: int
    pool_index: int
    seed: int | None
    think_s: float
    duplicate_after_s: float | None = None

    @property
    def submit_at_s(self) -> float:
        """When the job is published: arrival plus think time."""
        return self.at_s + self.think_s


@dataclass(frozen=True)
class PlannedJourney:
    """A rental journey: its arrival, the pause before each step, the house and lease it goes for."""

    index: int
    at_s: float
    mix_index: int
    think_s: tuple[float, ...]
    house_pick: float
    start_in_days: int
    months: int
    repair: bool
    command: bool = False
    duplicate_command: bool = False


@dataclass(frozen=True)
class PlannedGarbage:
    """A garbage message onto a jobs topic (`kind` training or planning) or rental.commands (`kind` rental)."""

    index: int
    at_s: float
    kind: str
    flavour: GarbageFlavour
    payload_seed: int


@dataclass(frozen=True)
class PlannedFault:
    """A fault at a moment; `pick` in [0, 1) chooses among the candidate workers when it fires."""

    index: int
    at_s: float
    fault: TimedFault
    pick: float


@dataclass(frozen=True)
class Plan:
    """Everything a run will do, in time order within each list."""

    jobs: list[PlannedJob] = field(default_factory=list)
    journeys: list[PlannedJourney] = field(default_factory=list)
    garbage: list[PlannedGarbage] = field(default_factory=list)
    faults: list[PlannedFault] = field(default_factory=list)

    def count(self, kind: str) -> int:
        """How many jobs of `kind` the plan submits."""
        return sum(1 for j in self.jobs if j.kind == kind)

    @property
    def duplicates(self) -> int:
        """How many jobs are published twice."""
        return sum(1 for j in self.jobs if j.duplicate_after_s is not None)

    def digest(self) -> str:
        """sha256 of the plan as canonical JSON: equal digests mean identical plans."""
        body = {
            "jobs": [asdict(j) for j in self.jobs],
            "journeys": [asdict(j) for j in self.journeys],
            "garbage": [asdict(g) for g in self.garbage],
            "faults": [
                {"index": f.index, "at_s": f.at_s, "pick": f.pick, "fault": f.fault.model_dump(mode="json")}
                for f in self.faults
            ],
        }
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=_round)
        return hashlib.sha256(text.encode()).hexdigest()


def _round(value: Any) -> Any:
    if isinstance(value, np.floating | np.integer):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")


def build_plan(scenario: Scenario) -> Plan:
    """The plan for `scenario`: a pure function of the scenario (and so of its seed)."""
    seed = scenario.seed
    arrivals = arrival_times(
        scenario.rate, scenario.duration_s, scenario.arrivals, _stream(seed, _ARRIVALS), scenario.max_actions
    )
    weights = np.array([a.weight for a in scenario.mix], dtype=np.float64)
    choices = _stream(seed, _MIX).choice(len(scenario.mix), size=len(arrivals), p=weights / weights.sum())
    job_rng, journey_rng = _stream(seed, _JOBS), _stream(seed, _JOURNEYS)
    jobs: list[PlannedJob] = []
    journeys: list[PlannedJourney] = []
    for at, mix_index in zip(arrivals.tolist(), choices.tolist(), strict=True):
        action = scenario.mix[mix_index]
        if isinstance(action, TrainingAction | PlanningAction):
            pool_w = np.array([e.weight for e in action.pool], dtype=np.float64)
            pool_index = int(job_rng.choice(len(action.pool), p=pool_w / pool_w.sum()))
            job_seed = int(job_rng.integers(0, SEED_BOUND))
            jobs.append(
                PlannedJob(
                    index=len(jobs),
                    at_s=float(at),
                    kind=action.action,
                    mix_index=int(mix_index),
                    pool_index=pool_index,
                    seed=job_seed if action.vary_seed else None,
                    think_s=float(think(action.think_time, job_rng)),
                )
            )
        else:
            assert isinstance(action, RentalAction)
            low, high = scenario.rental.lease_months
            think_s = tuple(float(x) for x in think(action.think_time, journey_rng, size=len(JOURNEY_STEPS)))
            house_pick = float(journey_rng.random())
            later = int(journey_rng.integers(1, scenario.rental.start_within_days + 1))
            months = int(journey_rng.integers(min(low, high), max(low, high) + 1))
            # Only a tenant whose lease has begun may ask for a repair, so those leases start today.
            repair = bool(journey_rng.random() < action.request_repair)
            command = bool(journey_rng.random() < action.viewings_via_commands)
            duplicate_command = command and bool(journey_rng.random() < action.duplicate_commands)
            journeys.append(
                PlannedJourney(
                    index=len(journeys),
                    at_s=float(at),
                    mix_index=int(mix_index),
                    think_s=think_s,
                    house_pick=house_pick,
                    start_in_days=0 if repair else later,
                    months=months,
                    repair=repair,
                    command=command,
                    duplicate_command=duplicate_command,
                )
            )
    jobs = _with_duplicates(scenario, jobs)
    return Plan(jobs=jobs, journeys=journeys, garbage=_garbage(scenario, jobs, len(journeys)), faults=_faults(scenario))


def _eligible(jobs: list[PlannedJob], target: str) -> list[int]:
    return [j.index for j in jobs if target in ("any", j.kind)]


def _with_duplicates(scenario: Scenario, jobs: list[PlannedJob]) -> list[PlannedJob]:
    delays: dict[int, float] = {}
    for i, fault in enumerate(scenario.faults):
        if not isinstance(fault, DuplicateFault):
            continue
        rng = _stream(scenario.seed, _DUPLICATES, i)
        pool = [j for j in _eligible(jobs, fault.target) if j not in delays]
        wanted = min(len(pool), max(1, round(fault.fraction * len(_eligible(jobs, fault.target)))))
        if not pool or not wanted:
            continue
        for j in sorted(rng.choice(pool, size=wanted, replace=False).tolist()):
            delays[j] = float(think(fault.delay, rng))
    if not delays:
        return jobs
    return [PlannedJob(**{**asdict(j), "duplicate_after_s": delays[j.index]}) if j.index in delays else j for j in jobs]


def _garbage(scenario: Scenario, jobs: list[PlannedJob], journeys: int) -> list[PlannedGarbage]:
    out: list[PlannedGarbage] = []
    kinds: list[str] = [*scenario.kinds(), *(["rental"] if scenario.has_rental() else [])]
    for i, fault in enumerate(scenario.faults):
        if not isinstance(fault, GarbageFault) or not kinds:
            continue
        rng = _stream(scenario.seed, _GARBAGE, i)
        targets = kinds if fault.target == "any" else [fault.target]
        eligible = len([j for j in jobs if j.kind in targets]) + (journeys if "rental" in targets else 0)
        count = fault.count if fault.count is not None else max(1, round((fault.fraction or 0.0) * eligible))
        times = np.sort(rng.uniform(0.0, scenario.duration_s, size=count))
        picks = rng.integers(0, len(targets), size=count)
        flavours = rng.integers(0, len(fault.flavours), size=count)
        seeds = rng.integers(0, SEED_BOUND, size=count)
        for at, k, f, s in zip(times.tolist(), picks.tolist(), flavours.tolist(), seeds.tolist(), strict=True):
            out.append(PlannedGarbage(len(out), float(at), targets[k], fault.flavours[f], int(s)))
    out.sort(key=lambda g: g.at_s)
    return [PlannedGarbage(n, g.at_s, g.kind, g.flavour, g.payload_seed) for n, g in enumerate(out)]


def _faults(scenario: Scenario) -> list[PlannedFault]:
    out = []
    for i, fault in scenario.timed_faults():
        rng = _stream(scenario.seed, _FAULTS, i)
        out.append(PlannedFault(i, fault.at_s, fault, float(rng.random())))
    return sorted(out, key=lambda f: (f.at_s, f.index))
