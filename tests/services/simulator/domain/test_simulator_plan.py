"""The seeded plan: reproducible per seed, exact fault fractions, independent random streams."""

from __future__ import annotations

from typing import Any

from simulator.domain.plan import JOURNEY_STEPS, build_plan
from simulator.domain.scenario import Scenario

TRAINING = {"model": {"kind": "linear"}, "epochs": 3}
PLANNING = {
    "scenario": {
        "terrain": {"kind": "gaussian"},
        "bounds": {"x": [0, 100], "y": [0, 100]},
        "start": [5, 5, 10],
        "goal": [90, 90, 10],
    },
    "optimizer": {"population": 4, "iterations": 2},
}


def scenario(seed: int = 1, faults: list[dict[str, Any]] | None = None, **extra: Any) -> Scenario:
    data: dict[str, Any] = {
        "name": "p",
        "seed": seed,
        "duration_s": 100,
        "rate": {"shape": "constant", "per_second": 10},
        "arrivals": "uniform",
        "mix": [
            {"action": "training", "weight": 3, "pool": [{"spec": TRAINING}, {"spec": TRAINING, "weight": 3}]},
            {"action": "planning", "weight": 1, "pool": [{"spec": PLANNING}]},
            {"action": "rental", "weight": 1, "think_time": {"distribution": "exponential", "mean_s": 2}},
        ],
        "faults": faults or [],
        **extra,
    }
    return Scenario.model_validate(data)


def test_the_same_seed_gives_the_same_plan() -> None:
    a, b = build_plan(scenario(5)), build_plan(scenario(5))
    assert a == b
    assert a.digest() == b.digest()


def test_another_seed_gives_another_plan() -> None:
    assert build_plan(scenario(5)).digest() != build_plan(scenario(6)).digest()


def test_the_mix_follows_the_weights() -> None:
    plan = build_plan(scenario())
    total = len(plan.jobs) + len(plan.journeys)
    assert total == 1000
    assert abs(plan.count("training") - 600) < 60
    assert abs(plan.count("planning") - 200) < 45
    assert abs(len(plan.journeys) - 200) < 45
    pool = [j.pool_index for j in plan.jobs if j.kind == "training"]
    assert abs(pool.count(1) / len(pool) - 0.75) < 0.06


def test_jobs_get_their_own_seeds_unless_told_not_to() -> None:
    plan = build_plan(scenario())
    seeds = [j.seed for j in plan.jobs]
    assert None not in seeds and len(set(seeds)) > 0.99 * len(seeds)


def test_journeys_have_a_think_time_before_every_step() -> None:
    journey = build_plan(scenario()).journeys[0]
    assert len(journey.think_s) == len(JOURNEY_STEPS)
    assert all(t >= 0 for t in journey.think_s)
    assert 6 <= journey.months <= 12


def test_duplicates_are_an_exact_fraction_of_their_target() -> None:
    plan = build_plan(scenario(faults=[{"kind": "duplicate", "fraction": 0.01, "target": "training"}]))
    dup = [j for j in plan.jobs if j.duplicate_after_s is not None]
    assert len(dup) == round(0.01 * plan.count("training"))
    assert all(j.kind == "training" and 0 <= (j.duplicate_after_s or 0) <= 5 for j in dup)
    assert plan.duplicates == len(dup)


def test_garbage_is_a_fraction_of_the_jobs_or_a_count() -> None:
    plan = build_plan(
        scenario(
            faults=[
                {"kind": "garbage", "fraction": 0.01},
                {"kind": "garbage", "count": 4, "target": "planning", "flavours": ["schema"]},
            ]
        )
    )
    assert len(plan.garbage) == round(0.01 * (len(plan.jobs) + len(plan.journeys))) + 4
    assert [g.index for g in plan.garbage] == list(range(len(plan.garbage)))
    assert all(a.at_s <= b.at_s for a, b in zip(plan.garbage, plan.garbage[1:], strict=False))
    schema_planning = [g for g in plan.garbage if g.kind == "planning" and g.flavour == "schema"]
    assert len(schema_planning) >= 4


def test_timed_faults_come_in_time_order() -> None:
    faults = [
        {"kind": "broker_restart", "at_s": 50},
        {"kind": "kill_worker", "at_s": 10},
        {"kind": "redis_outage", "at_s": 30, "down_s": 5},
    ]
    plan = build_plan(scenario(faults=faults))
    assert [(f.at_s, f.fault.kind) for f in plan.faults] == [
        (10, "kill_worker"),
        (30, "redis_outage"),
        (50, "broker_restart"),
    ]
    assert all(0 <= f.pick < 1 for f in plan.faults)


def test_adding_a_fault_moves_no_arrival() -> None:
    plain = build_plan(scenario())
    faulty = build_plan(scenario(faults=[{"kind": "kill_worker", "at_s": 10}, {"kind": "garbage", "count": 3}]))
    assert [(j.at_s, j.kind, j.pool_index, j.seed) for j in plain.jobs] == [
        (j.at_s, j.kind, j.pool_index, j.seed) for j in faulty.jobs
    ]


def test_max_actions_caps_the_plan() -> None:
    plan = build_plan(scenario(max_actions=25))
    assert len(plan.jobs) + len(plan.journeys) == 25


def test_garbage_can_target_the_rental_commands() -> None:
    plan = build_plan(scenario(faults=[{"kind": "garbage", "count": 30}]))
    assert {g.kind for g in plan.garbage} == {"training", "planning", "rental"}
    only = build_plan(scenario(faults=[{"kind": "garbage", "fraction": 0.1, "target": "rental"}]))
    assert {g.kind for g in only.garbage} == {"rental"}
    assert len(only.garbage) == round(0.1 * len(only.journeys))
