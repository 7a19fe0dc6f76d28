"""Planning message schemas: defaults, field-naming validation errors, registry entries, the spec hash."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError
from quartet_contracts.registry import ce_type_of, lookup
from quartet_contracts.schemas.planning import (
    CancelPlan,
    PlanCancelled,
    PlanCompleted,
    PlanFailed,
    PlanningJobSpec,
    PlanProgressed,
    PlanRequested,
    normalized_spec_hash,
)


def base() -> dict[str, Any]:
    return {
        "scenario": {
            "terrain": {"kind": "file", "path": "uav-spso/terrain.npz"},
            "bounds": {"x": [1, 1045], "y": [1, 879]},
            "threats": [{"x": 400, "y": 500, "radius": 80}],
            "start": [200, 100, 150],
            "goal": [800, 800, 150],
        }
    }


def errors(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as err:
        PlanningJobSpec.model_validate(data)
    return [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in err.value.errors()]


def test_defaults() -> None:
    spec = PlanningJobSpec.model_validate(base())
    assert spec.optimizer.name == "iboa" and spec.seed == 0 and spec.compare == []
    assert (spec.cost.length, spec.cost.threat, spec.cost.altitude, spec.cost.smoothness) == (5, 1, 10, 1)
    assert (spec.scenario.altitude.min, spec.scenario.altitude.max, spec.scenario.waypoints) == (100, 200, 10)


def with_(path: str, value: Any) -> dict[str, Any]:
    data = base()
    node = data
    keys = path.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "loc", "text"),
    [
        ("scenario.start", [2000, 100, 150], "scenario.start", "outside bounds"),
        ("scenario.goal", [800, -5, 150], "scenario.goal", "outside bounds"),
        ("scenario.goal", [410, 510, 150], "scenario.goal", "inside threats[0]"),
        ("scenario.start", [200, 100, -1], "scenario.start", "height above ground"),
        ("optimizer.population", 0, "optimizer.population", "greater than or equal to 2"),
        ("optimizer.iterations", -3, "optimizer.iterations", "greater than or equal to 1"),
        ("optimizer.max_evaluations", 0, "optimizer.max_evaluations", "greater than 0"),
        ("scenario.bounds.x", [10, 5], "scenario.bounds.x", "min < max"),
        ("scenario.altitude", {"min": 200, "max": 100}, "scenario.altitude", "altitude.max"),
        ("scenario.threats", [{"x": 1, "y": 1, "radius": 0}], "scenario.threats.0.radius", "greater than 0"),
        ("scenario.terrain", {"kind": "mesh"}, "scenario.terrain", "kind"),
        ("compare", ["boa", "boa"], "compare", "twice"),
        ("scenario.waypoints", 0, "scenario.waypoints", "greater than or equal to 1"),
    ],
)
def test_validation_errors_name_the_field(path: str, value: Any, loc: str, text: str) -> None:
    found = errors(with_(path, value))
    assert any(lc == loc and text in msg for lc, msg in found), found


@pytest.mark.parametrize(
    ("upper", "cell"),
    [(1e308, 1e-300), (1e308, 5e-324), (1e300, 1.0), (1e200, 1e-200)],
    ids=["1e308 over 1e-300", "1e308 over the smallest float", "600-digit cell count", "inf cells"],
)
def test_huge_bounds_over_a_tiny_cell_name_the_bounds_and_stay_short(upper: float, cell: float) -> None:
    data = with_("scenario.terrain", {"kind": "gaussian", "cell_size": cell})
    data["scenario"]["bounds"] = {"x": [1, upper], "y": [1, upper]}
    [(loc, msg)] = errors(data)
    assert loc == "scenario.bounds"
    assert "over the maximum" in msg
    assert len(msg) < 250 and not re.search(r"\d{20}", msg), msg


def test_budget_hard_maximum() -> None:
    found = errors(with_("optimizer", {"population": 5000, "iterations": 401}))
    assert any("population × optimizer.iterations" in m and "2,000,000" in m for _, m in found), found
    found = errors({**with_("optimizer", {"population": 1000, "iterations": 1000}), "compare": ["boa", "spso"]})
    assert any("compare" in m for _, m in found), found


def test_lshade_and_jso_are_choices_and_need_four_individuals() -> None:
    every = ["boa", "iboa", "pso", "spso", "lshade", "jso", "astar"]
    spec = PlanningJobSpec.model_validate({**with_("optimizer", {"name": "lshade"}), "compare": every[:4] + every[5:]})
    assert spec.optimizer.name == "lshade" and len(spec.compare) == 6
    found = errors({**with_("optimizer", {"name": "iboa", "population": 3}), "compare": ["jso"]})
    assert any("population" in m and "jso" in m for _, m in found), found
    assert PlanningJobSpec.model_validate(with_("optimizer", {"name": "iboa", "population": 3})).compare == []


def test_unknown_fields_are_rejected() -> None:
    found = errors({**base(), "sed": 1})
    assert found[0][0] == "sed"


def test_spec_hash_is_canonical() -> None:
    a = PlanningJobSpec.model_validate(base())
    explicit = base()
    explicit["seed"] = 0
    explicit["cost"] = {"length": 5.0, "threat": 1, "altitude": 10, "smoothness": 1}
    explicit["scenario"]["threats"][0]["z"] = None
    b = PlanningJobSpec.model_validate(explicit)
    c = PlanningJobSpec.model_validate({**base(), "seed": 1})
    assert normalized_spec_hash(a) == normalized_spec_hash(b)
    assert normalized_spec_hash(a) != normalized_spec_hash(c)
    assert normalized_spec_hash(PlanRequested.model_validate(base())) == normalized_spec_hash(a)
    assert len(normalized_spec_hash(a)) == 64


@pytest.mark.parametrize(
    ("model", "ce_type", "topic"),
    [
        (PlanRequested, "quartet.planning.PlanRequested.v1", "planning.jobs"),
        (PlanProgressed, "quartet.planning.PlanProgressed.v1", "planning.progress"),
        (PlanCompleted, "quartet.planning.PlanCompleted.v1", "planning.results"),
        (PlanFailed, "quartet.planning.PlanFailed.v1", "planning.results"),
        (PlanCancelled, "quartet.planning.PlanCancelled.v1", "planning.results"),
        (CancelPlan, "quartet.planning.CancelPlan.v1", "planning.control"),
    ],
)
def test_registered(model: type, ce_type: str, topic: str) -> None:
    entry = lookup(ce_type)
    assert entry.model is model and entry.topic == topic and ce_type_of(model) == ce_type
    assert entry.description and "\n" not in entry.description


def test_progress_bounds() -> None:
    PlanProgressed(job_id="j", iteration=3, iterations=10, progress=0.3, best_cost=12.5)
    with pytest.raises(ValidationError) as err:
        PlanProgressed(job_id="j", iteration=3, iterations=10, progress=1.5, best_cost=12.5)
    assert err.value.errors()[0]["loc"] == ("progress",)
