"""The training message schemas: defaults, validation errors that name the field, the registry, the hash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from quartet_contracts.registry import ce_type_of, lookup
from quartet_contracts.schemas.training import (
    MAX_EPOCHS,
    CancelTraining,
    GeneratorSource,
    LinearData,
    Polynomial1D,
    SingleRun,
    Sweep,
    TrainingCancelled,
    TrainingCompleted,
    TrainingFailed,
    TrainingJobSpec,
    TrainingProgressed,
    TrainingRequested,
    normalized_spec_hash,
)

from tests.support.training import EXAMPLES, example_raw


def _error_locations(exc: ValidationError) -> list[str]:
    return [".".join(str(part) for part in err["loc"]) for err in exc.errors()]


def test_an_empty_spec_is_a_complete_linear_job() -> None:
    spec = TrainingJobSpec.model_validate({})
    assert spec.model.kind == "linear"
    assert spec.optimizer.kind == "gd"
    assert spec.regularization.kind == "l2"
    assert spec.regularization.lam > 0.0
    assert isinstance(spec.mode, SingleRun)
    assert isinstance(spec.data, GeneratorSource)
    assert isinstance(spec.data.generator, LinearData)


def test_the_default_data_suits_the_model() -> None:
    poly = TrainingJobSpec.model_validate({"model": {"kind": "polynomial", "degree": 15}})
    assert isinstance(poly.data, GeneratorSource)
    assert isinstance(poly.data.generator, Polynomial1D)
    softmax = TrainingJobSpec.model_validate({"model": {"kind": "softmax"}})
    assert isinstance(softmax.data, GeneratorSource)
    assert softmax.data.generator.name == "blobs"
    for head, generator, classes in (("linear", "linear", None), ("sigmoid", "blobs", 2), ("softmax", "blobs", 3)):
        mlp = TrainingJobSpec.model_validate({"model": {"kind": "mlp", "head": head}})
        assert isinstance(mlp.data, GeneratorSource)
        assert mlp.data.generator.name == generator
        assert getattr(mlp.data.generator, "n_classes", None) == classes


@pytest.mark.parametrize(
    ("raw", "location", "message"),
    [
        ({"model": {"kind": "forest"}}, "model", "does not match any of the expected tags"),
        ({"optimizer": {"kind": "newton"}}, "optimizer", "does not match any of the expected tags"),
        ({"regularization": {"lam": -0.1}}, "regularization.lam", "greater than or equal to 0"),
        ({"regularization": {"kind": "l3"}}, "regularization.kind", "Input should be"),
        ({"optimizer": {"kind": "gd", "lr": 0}}, "optimizer.gd.lr", "greater than 0"),
        ({"optimizer": {"kind": "sgd", "lr": -1}}, "optimizer.sgd.lr", "greater than 0"),
        ({"optimizer": {"kind": "adam", "lr": float("nan")}}, "optimizer.adam.lr", "finite number"),
        ({"epochs": MAX_EPOCHS + 1}, "epochs", "less than or equal to 100000"),
        ({"epochs": 0}, "epochs", "greater than or equal to 1"),
        ({"model": {"kind": "polynomial", "degree": 31}}, "model.polynomial.degree", "less than or equal"),
        ({"optimizer": {"kind": "sgd", "momentum": 1.0}}, "optimizer.sgd.momentum", "less than 1"),
        ({"validation_split": 1.0}, "validation_split", "less than 1"),
        ({"mode": {"kind": "sweep", "lambdas": [0.1, -1.0]}}, "mode.sweep.lambdas", "every λ must be in"),
        ({"mode": {"kind": "sweep", "lambdas": []}}, "mode.sweep.lambdas", "at least 1"),
        ({"mode": {"kind": "sweep", "folds": 1}}, "mode.sweep.folds", "greater than or equal to 2"),
        (
            {"data": {"kind": "generator", "generator": {"name": "linear", "n_samples": 1_000_001}}},
            "data.generator.generator.linear.n_samples",
            "less than or equal to 1000000",
        ),
        (
            {"data": {"kind": "generator", "generator": {"name": "linear", "n_samples": 1_000_000, "n_features": 60}}},
            "data.generator.generator.linear",
            "over the limit",
        ),
        ({"data": {"kind": "sklearn", "name": "mnist"}}, "data.sklearn.name", "Input should be"),
        ({"data": {"kind": "upload", "dataset_id": "../etc/passwd"}}, "data.upload.dataset_id", "pattern"),
        ({"unknown_field": 1}, "unknown_field", "Extra inputs are not permitted"),
        ({"optimizer": {"kind": "gd", "momentum": 0.9}}, "optimizer.gd.momentum", "Extra inputs"),
        ({"model": {"kind": "mlp", "hidden": [8, 0]}}, "model.mlp.hidden.1", "greater than or equal to 1"),
        ({"model": {"kind": "mlp", "hidden": []}}, "model.mlp.hidden", "at least 1"),
        ({"model": {"kind": "mlp", "hidden": [8, 8, 8, 8]}}, "model.mlp.hidden", "at most 3"),
        ({"model": {"kind": "mlp", "hidden": [5000]}}, "model.mlp.hidden.0", "less than or equal to 4096"),
        ({"model": {"kind": "mlp", "activation": "sigmoid"}}, "model.mlp.activation", "Input should be"),
        ({"model": {"kind": "mlp", "head": "tanh"}}, "model.mlp.head", "Input should be"),
        ({"model": {"kind": "mlp", "init": "orthogonal"}}, "model.mlp.init", "Input should be"),
        (
            {"data": {"kind": "generator", "generator": {"name": "circles", "factor": 1.0}}},
            "data.generator.generator.circles.factor",
            "less than 1",
        ),
        (
            {"data": {"kind": "generator", "generator": {"name": "moons", "n_samples": 2}}},
            "data.generator.generator.moons.n_samples",
            "greater than or equal to 4",
        ),
    ],
)
def test_invalid_specs_name_the_field(raw: dict[str, Any], location: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        TrainingJobSpec.model_validate(raw)
    assert location in _error_locations(info.value)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"data": {"kind": "inline", "rows": [[1, 2, 3], [4, 5], [6, 7, 8]]}}, "rows: row 2 has 2 cells, expected 3"),
        ({"data": {"kind": "inline", "rows": [[1], [2], [3]]}}, "rows: each row needs at least one feature"),
        (
            {"data": {"kind": "inline", "rows": [[1, 2], [3, 4], [5, 6]], "columns": ["a"]}},
            "columns: 1 names for rows of 2 cells",
        ),
        (
            {"data": {"kind": "inline", "rows": [[1, 2], [3, 4], [5, 6]], "columns": ["a", "b"], "label_column": "c"}},
            "label_column: 'c' is not one of the columns",
        ),
        ({"data": {"kind": "inline", "rows": [[1, 2], [3, 4], [5, 6]], "label_column": 2}}, "label_column: index 2"),
        ({"model": {"kind": "logistic"}, "data": {"kind": "sklearn", "name": "iris"}}, "model: logistic regression"),
        ({"model": {"kind": "linear"}, "data": {"kind": "sklearn", "name": "wine"}}, "model: linear regression"),
        ({"model": {"kind": "softmax"}, "data": {"kind": "sklearn", "name": "diabetes"}}, "model: softmax"),
        ({"model": {"kind": "logistic"}, "optimizer": {"kind": "closed_form"}}, "optimizer: closed_form solves"),
        (
            {"optimizer": {"kind": "closed_form"}, "regularization": {"kind": "decoupled", "lam": 0.1}},
            "optimizer: closed_form solves the L2",
        ),
        (
            {"optimizer": {"kind": "lbfgs"}, "regularization": {"kind": "l1", "lam": 0.1}},
            "optimizer: lbfgs minimizes the smooth L2-penalized objective; regularization kind l1",
        ),
        (
            {"optimizer": {"kind": "lbfgs"}, "early_stopping": {}},
            "early_stopping: lbfgs runs to its tolerance",
        ),
        ({"optimizer": {"kind": "lbfgs", "lr": 0.1}}, "Extra inputs are not permitted"),
        ({"mode": {"kind": "sweep"}, "regularization": {"kind": "none"}}, "mode: a λ sweep needs"),
        ({"mode": {"kind": "sweep", "validation": "loo"}}, "mode.validation: leave-one-out is the closed-form"),
        ({"early_stopping": {}, "validation_split": 0.0}, "early_stopping: needs a validation_split"),
        ({"schedule": {"kind": "cosine", "min_lr": 0.5}}, "schedule.min_lr: 0.5 must be below the lr 0.1"),
        ({"regularization": {"kind": "none", "lam": 0.1}}, "lam: must be 0 when kind is none"),
        (
            {"model": {"kind": "mlp", "head": "sigmoid"}, "data": {"kind": "sklearn", "name": "iris"}},
            "model.head: a sigmoid head is binary, but the data has 3 classes",
        ),
        ({"model": {"kind": "mlp"}, "data": {"kind": "sklearn", "name": "wine"}}, "model.head: a linear head needs"),
        (
            {"model": {"kind": "mlp"}, "data": {"kind": "generator", "generator": {"name": "moons"}}},
            "model.head: a linear head needs",
        ),
        (
            {"model": {"kind": "linear"}, "data": {"kind": "generator", "generator": {"name": "circles"}}},
            "model: linear regression needs a numeric target",
        ),
        (
            {"model": {"kind": "mlp", "head": "softmax"}, "data": {"kind": "sklearn", "name": "diabetes"}},
            "model.head: a softmax head needs class labels",
        ),
    ],
)
def test_inconsistent_specs_say_which_field_is_wrong(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        TrainingJobSpec.model_validate(raw)


@pytest.mark.parametrize(
    "label",
    [10**600, -(10**5000), "x" * 100_000],
    ids=["600-digit index", "5000-digit index", "100k-character name"],
)
def test_errors_never_echo_a_huge_value(label: Any) -> None:
    raw = {"data": {"kind": "inline", "rows": [[1, 2], [3, 4], [5, 6]], "columns": ["a", "b"], "label_column": label}}
    with pytest.raises(ValidationError) as err:
        TrainingJobSpec.model_validate(raw)
    [error] = err.value.errors()
    assert "label_column" in error["msg"]
    assert len(error["msg"]) < 200, error["msg"][:300]


def test_sweeps_of_classifiers_default_to_lbfgs_and_other_jobs_keep_gradient_descent() -> None:
    for model in ("logistic", "softmax"):
        spec = TrainingJobSpec.model_validate({"model": {"kind": model}, "mode": {"kind": "sweep"}})
        assert spec.optimizer.kind == "lbfgs"
        single = TrainingJobSpec.model_validate({"model": {"kind": model}})
        assert single.optimizer.kind == "gd"
    assert TrainingJobSpec.model_validate({"mode": {"kind": "sweep"}}).optimizer.kind == "gd"
    chosen = {"model": {"kind": "logistic"}, "mode": {"kind": "sweep"}, "optimizer": {"kind": "adam"}}
    assert TrainingJobSpec.model_validate(chosen).optimizer.kind == "adam"
    assert TrainingJobSpec.model_validate({"optimizer": {"kind": "lbfgs"}, "tol": 1e-6}).tol == 1e-6


def test_sweep_grid_is_sorted_and_deduplicated() -> None:
    spec = TrainingJobSpec.model_validate({"mode": {"kind": "sweep", "lambdas": [1.0, 0.0, 0.1, 1.0]}})
    assert isinstance(spec.mode, Sweep)
    assert spec.mode.lambdas == (0.0, 0.1, 1.0)


def test_regularization_none_defaults_lam_to_zero() -> None:
    spec = TrainingJobSpec.model_validate({"regularization": {"kind": "none"}})
    assert spec.regularization.lam == 0.0


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_jobs_validate(path: Path) -> None:
    spec = TrainingJobSpec.model_validate(example_raw(path))
    assert TrainingRequested.model_validate(spec.model_dump()) == TrainingRequested.model_validate(example_raw(path))


def test_the_required_examples_exist() -> None:
    specs = [TrainingJobSpec.model_validate(example_raw(p)) for p in EXAMPLES]
    combos = {(s.model.kind, getattr(s.data, "name", None), s.mode.kind) for s in specs}
    assert ("logistic", "breast_cancer", "single") in combos
    assert ("softmax", "iris", "single") in combos
    assert any(kind == "linear" and name == "diabetes" for kind, name, _ in combos)
    demo = [s for s in specs if s.model.kind == "polynomial" and isinstance(s.mode, Sweep)]
    assert demo
    assert getattr(demo[0].model, "degree", None) == 15
    assert any(s.data.kind == "upload" for s in specs)


def test_hash_ignores_spelled_out_defaults_and_grid_order() -> None:
    implicit = TrainingJobSpec.model_validate({"model": {"kind": "polynomial", "degree": 15}})
    explicit = TrainingJobSpec.model_validate(implicit.model_dump())
    assert normalized_spec_hash(implicit) == normalized_spec_hash(explicit)
    a = TrainingJobSpec.model_validate({"mode": {"kind": "sweep", "lambdas": [0.1, 0.0, 1.0]}})
    b = TrainingJobSpec.model_validate(
        {"mode": {"kind": "sweep", "lambdas": [1.0, 0.1, 0.0]}, "regularization": {"lam": 5.0}}
    )
    assert normalized_spec_hash(a) == normalized_spec_hash(b)
    requested = TrainingRequested.model_validate(a.model_dump())
    assert normalized_spec_hash(requested) == normalized_spec_hash(a)


def test_hash_changes_with_anything_that_changes_the_result() -> None:
    base = TrainingJobSpec.model_validate({})
    variants = [
        {"seed": 1},
        {"optimizer": {"kind": "gd", "lr": 0.2}},
        {"regularization": {"lam": 0.02}},
        {"epochs": 201},
        {"standardize": False},
        {"model": {"kind": "polynomial", "degree": 2}, "data": {"kind": "generator"}},
        {"model": {"kind": "mlp"}},
        {"model": {"kind": "mlp", "hidden": [16]}},
        {"model": {"kind": "mlp", "activation": "tanh"}},
        {"model": {"kind": "mlp", "init": "xavier"}},
    ]
    hashes = {normalized_spec_hash(base)}
    for variant in variants:
        hashes.add(normalized_spec_hash(TrainingJobSpec.model_validate(variant)))
    assert len(hashes) == len(variants) + 1
    assert len(normalized_spec_hash(base)) == 64


def test_closed_form_hash_ignores_epoch_settings() -> None:
    a = TrainingJobSpec.model_validate({"optimizer": {"kind": "closed_form"}, "epochs": 10})
    b = TrainingJobSpec.model_validate({"optimizer": {"kind": "closed_form"}, "epochs": 999})
    assert normalized_spec_hash(a) == normalized_spec_hash(b)


def test_messages_are_registered_on_their_topics() -> None:
    expected = {
        TrainingRequested: ("quartet.training.TrainingRequested.v1", "training.jobs"),
        TrainingProgressed: ("quartet.training.TrainingProgressed.v1", "training.progress"),
        TrainingCompleted: ("quartet.training.TrainingCompleted.v1", "training.results"),
        TrainingFailed: ("quartet.training.TrainingFailed.v1", "training.results"),
        TrainingCancelled: ("quartet.training.TrainingCancelled.v1", "training.results"),
        CancelTraining: ("quartet.training.CancelTraining.v1", "training.control"),
    }
    for model, (ce_type, topic) in expected.items():
        assert ce_type_of(model) == ce_type
        registered = lookup(ce_type)
        assert registered.model is model
        assert registered.topic == topic
        assert registered.description
        assert "\n" not in registered.description
        assert model.model_json_schema()["title"] == model.__name__


def test_progress_and_control_messages_validate() -> None:
    with pytest.raises(ValidationError) as info:
        TrainingProgressed(job_id="j", epoch=1, epochs=10, progress=1.5, train_loss=0.1, weight_norm=1.0)
    assert "progress" in _error_locations(info.value)
    with pytest.raises(ValidationError):
        CancelTraining(job_id="")
    message = CancelTraining(job_id="job-1")
    assert CancelTraining.model_validate_json(message.model_dump_json()) == message


def test_planned_epochs_bounds_the_work_of_every_fit() -> None:
    assert TrainingJobSpec.model_validate({"epochs": 300}).planned_epochs() == 600
    sweep = TrainingJobSpec.model_validate({"epochs": 10, "mode": {"kind": "sweep", "lambdas": [0.1, 1.0], "folds": 3}})
    assert sweep.planned_epochs() == 10 * (2 * 3 + 2)
    holdout = TrainingJobSpec.model_validate(
        {
            "optimizer": {"kind": "closed_form"},
            "mode": {"kind": "sweep", "lambdas": [0.1, 1.0], "validation": "holdout"},
        }
    )
    assert holdout.planned_epochs() == 4
    loo = TrainingJobSpec.model_validate(
        {"optimizer": {"kind": "closed_form"}, "mode": {"kind": "sweep", "lambdas": [0.1, 1.0], "validation": "loo"}}
    )
    assert loo.planned_epochs() == 3
