"""What the preflight tests share: a small training scenario with the faults given, and the problems the
preflight check names for it."""

from __future__ import annotations

from simulator.domain.scenario import Scenario
from simulator.preflight import PreflightError, check
from simulator.settings import SimulatorSettings

SPEC = {"model": {"kind": "linear"}, "epochs": 3}


def scenario(faults: list[dict[str, object]] | None = None, rental: bool = False) -> Scenario:
    """Ten seconds of training jobs at one a second (and rental commands, with `rental`), with these faults."""
    mix: list[dict[str, object]] = [{"action": "training", "weight": 1, "pool": [{"spec": SPEC}]}]
    if rental:
        mix.append({"action": "rental", "weight": 1})
    return Scenario.model_validate(
        {
            "name": "p",
            "seed": 1,
            "duration_s": 10,
            "rate": {"shape": "constant", "per_second": 1},
            "mix": mix,
            "faults": faults or [],
        }
    )


def problems(sc: Scenario, **kwargs: object) -> list[str]:
    """What the preflight check names for the scenario, on a system with a training worker unless told otherwise."""
    args: dict[str, object] = {
        "worker_groups": {"training": "training.jobs-worker"},
        "managed": set(),
        "controlled": set(),
        "has_server_control": False,
        "members": lambda groups: dict.fromkeys(groups, 1),
    }
    args.update(kwargs)
    try:
        check(SimulatorSettings(kafka_bootstrap_servers="127.0.0.1:1"), sc, **args)  # type: ignore[arg-type]
    except PreflightError as exc:
        return exc.problems
    return []
