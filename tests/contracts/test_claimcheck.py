"""The claim-check of job results: what a result event carries, what is stored beside it, and the bound."""

from __future__ import annotations

from typing import Any

import pytest
from quartet_contracts.envelope import Envelope
from quartet_contracts.schemas.claimcheck import PARTS_ARTIFACT, decode_parts, encode_parts, merge_parts
from quartet_contracts.schemas.planning import (
    MAX_ITERATIONS,
    MAX_THREATS,
    MAX_WAYPOINTS,
    MAX_ZONES,
    OptimizerName,
    PlanCompleted,
    split_plan_result,
)
from quartet_contracts.schemas.training import (
    MAX_CLASSES,
    MAX_EPOCHS,
    MAX_FEATURES,
    MAX_HIDDEN_LAYERS,
    MAX_LAMBDAS,
    TrainingCompleted,
    split_training_result,
)
from quartet_shared.settings import KernelSettings

BROKER_LIMIT = 1024 * 1024
# A float as JSON at its longest (17 significant digits, a sign and an exponent), so the sizes below are maxima.
LONG = -1.2345678901234567e-100


def _largest_training_result() -> dict[str, Any]:
    """A softmax result at every schema maximum (epochs, features, classes, λ grid, layers); long names everywhere."""
    history = [LONG] * MAX_EPOCHS
    similarity = {"dot": LONG, "cosine": LONG, "l1": 1e300, "l2": 1e300}
    sweep = [{"lam": 1e6, "train_loss": LONG, "val_loss": LONG, "val_loss_std": 1e300} for _ in range(MAX_LAMBDAS)]
    return TrainingCompleted(
        job_id="j" * 200,
        spec_hash="f" * 64,
        model="softmax",
        feature_names=[f"feature-{i:05d}-" + "n" * 50 for i in range(MAX_FEATURES)],
        class_names=[f"class-{i:03d}-" + "c" * 50 for i in range(MAX_CLASSES)],
        weights=[[LONG] * MAX_CLASSES for _ in range(MAX_FEATURES)],
        bias=[LONG] * MAX_CLASSES,
        lam=1e6,
        metrics=dict.fromkeys(("train_accuracy", "val_accuracy", "train_loss", "val_loss", "train_f1"), LONG),
        reference_metrics=dict.fromkeys(("train_accuracy", "val_accuracy", "train_loss", "val_loss"), LONG),
        history={
            "train_loss": history,
            "val_loss": history,
            "weight_norm": [1e300] * MAX_EPOCHS,
            "layer_norms": [[1e300] * (MAX_HIDDEN_LAYERS + 1)] * MAX_EPOCHS,
        },
        similarity=similarity,
        layer_similarity=[similarity] * (MAX_HIDDEN_LAYERS + 1),
        # The largest hidden layers the schema allows run to gigabytes; one wide layer stands for them.
        hidden_layers=[{"weights": [[LONG] * 100] * 4096, "bias": [LONG] * 4096}],
        sweep={"points": sweep, "best_lam": 1e6, "validation": "kfold", "folds": 20},
        epochs_run=MAX_EPOCHS,
        stopped_early=True,
        plots=["fit", "loss", "validation_curve", "weight_norm", "confusion"],
    ).model_dump(mode="json")


def _largest_plan_result() -> dict[str, Any]:
    """A plan at every schema maximum: five runs of MAX_ITERATIONS, MAX_WAYPOINTS, a problem per threat and zone."""
    curve = [LONG] * MAX_ITERATIONS
    point = (LONG, LONG, LONG)
    names: list[OptimizerName] = ["boa", "pso", "spso", "astar"]
    runs = [
        {
            "optimizer": n,
            "encoding": "spherical",
            "best_cost": LONG,
            "feasible": False,
            "evaluations": 2_000_000,
            "runtime_s": 1e300,
            "fitness_curve": curve,
        }
        for n in names
    ]
    problems = [
        f"clips threat {i} at ({LONG:g}, {LONG:g}): passes {LONG:.1f} m from its centre, collision below "
        f"{LONG:g} m, near ({LONG:.0f}, {LONG:.0f})"
        for i in range(MAX_THREATS)
    ] + [f"enters no-fly zone {i} ({LONG:g}..{LONG:g} x {LONG:g}..{LONG:g})" for i in range(MAX_ZONES)]
    return PlanCompleted(
        job_id="j" * 200,
        spec_hash="f" * 64,
        optimizer="iboa",
        encoding="spherical",
        best_cost=LONG,
        cost={"total": LONG, "length": LONG, "threat": LONG, "altitude": LONG, "smoothness": LONG},
        feasible=False,
        problems=["leaves the map bounds", *problems, f"goes {LONG:.1f} m under the ground"],
        waypoints=[point] * MAX_WAYPOINTS,
        path=[point] * (MAX_WAYPOINTS * 100),
        fitness_curve=curve,
        evaluations=2_000_000,
        runtime_s=1e300,
        comparison=runs,
        plots=["fitness", "path_3d", "top_view"],
    ).model_dump(mode="json")


def _event_bytes(model: type[TrainingCompleted] | type[PlanCompleted], data: dict[str, Any]) -> int:
    key, value, headers = Envelope.of(
        model.model_validate(data), source="/s", subject="j" * 200, key="j" * 200
    ).to_kafka()
    return len(key or b"") + len(value) + sum(len(n) + len(v) for n, v in headers)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "largest", "split"),
    [
        (TrainingCompleted, _largest_training_result, split_training_result),
        (PlanCompleted, _largest_plan_result, split_plan_result),
    ],
)
def test_the_largest_result_the_schemas_allow_leaves_a_summary_far_under_the_event_bound(
    model: Any, largest: Any, split: Any
) -> None:
    whole = largest()
    summary, parts = split(whole)
    limit = KernelSettings().max_event_bytes
    assert _event_bytes(model, whole) > BROKER_LIMIT, "the whole result is what the broker refused"
    # The summary of the largest result fits the kernel's default bound with room to spare...
    assert _event_bytes(model, summary) < limit / 2
    # ...and the claim-check puts the whole back together.
    data, ref = encode_parts(parts)
    assert ref.name == PARTS_ARTIFACT and ref.size == len(data) > BROKER_LIMIT
    assert merge_parts(summary, decode_parts(data, ref)) == whole


def test_a_compared_run_keeps_its_summary_in_the_event_and_its_curve_in_the_parts() -> None:
    whole = _largest_plan_result()
    summary, parts = split_plan_result(whole)
    assert [r["best_cost"] for r in summary["comparison"]] == [LONG] * 4
    assert all("fitness_curve" not in r for r in summary["comparison"])
    assert [len(r["fitness_curve"]) for r in parts["comparison"]] == [MAX_ITERATIONS] * 4
    assert set(parts) == {"path", "fitness_curve", "comparison"}
    assert PlanCompleted.model_validate(summary).path == []


@pytest.mark.slow
def test_a_small_result_has_no_parts_and_a_split_summary_splits_to_itself() -> None:
    summary, parts = split_training_result(_largest_training_result())
    again, none = split_training_result(TrainingCompleted.model_validate(summary).model_dump(mode="json"))
    assert none == {}
    assert again == TrainingCompleted.model_validate(summary).model_dump(mode="json")
    assert set(parts) == {"history", "weights", "hidden_layers", "feature_names", "class_names"}


def test_stored_parts_that_do_not_match_their_reference_are_refused() -> None:
    data, ref = encode_parts({"path": [[1.0, 2.0, 3.0]]})
    assert encode_parts({"path": [[1.0, 2.0, 3.0]]}) == (data, ref), "the same parts encode to the same bytes"
    with pytest.raises(ValueError, match="does not match its reference"):
        decode_parts(data.replace(b"2.0", b"2.5"), ref)
    with pytest.raises(ValueError, match="does not match its reference"):
        decode_parts(data + b" ", ref)
