"""run_job end to end on specs: every example runs, data sources load, messages build, cancellation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from quartet_contracts.schemas.training import TrainingCompleted, TrainingJobSpec, normalized_spec_hash
from sklearn.linear_model import LogisticRegression
from training_worker.domain.errors import Cancelled, IncompatibleData, InvalidConfig, InvalidDataset
from training_worker.jobs import (
    EpochReport,
    completed_message,
    progress_message,
    run_job,
    train_config,
)

from tests.support.training import EXAMPLES, example_raw, example_upload


def _spec(path: Path) -> TrainingJobSpec:
    return TrainingJobSpec.model_validate(example_raw(path))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_runs_and_becomes_a_completed_message(path: Path) -> None:
    spec = _spec(path)
    reports: list[EpochReport] = []
    outcome = run_job(spec, on_epoch=reports.append, uploads=example_upload)
    assert reports
    assert reports[-1].progress <= 1.0
    message = completed_message("job-1", outcome, spec_hash=normalized_spec_hash(spec), plots=["loss"])
    again = TrainingCompleted.model_validate_json(message.model_dump_json())
    assert again == message
    assert message.model == spec.model.kind
    assert len(message.history.train_loss) == outcome.result.epochs_run
    progress = progress_message("job-1", reports[-1])
    assert progress.job_id == "job-1"
    assert progress.epoch == reports[-1].epoch


def test_example_quality() -> None:
    by_name = {p.stem: run_job(_spec(p)) for p in EXAMPLES if p.stem in ("logistic_breast_cancer", "softmax_iris")}
    assert by_name["logistic_breast_cancer"].metrics["val_accuracy"] > 0.94
    assert by_name["softmax_iris"].metrics["val_accuracy"] > 0.85


def test_polynomial_demo_example_beats_lambda_zero() -> None:
    outcome = run_job(_spec(next(p for p in EXAMPLES if p.stem == "polynomial_overfitting_sweep")))
    assert outcome.lam > 0.0
    assert outcome.metrics["val_mse"] < outcome.reference_metrics["val_mse"]


def test_moons_demo_decay_smooths_the_network() -> None:
    outcome = run_job(_spec(next(p for p in EXAMPLES if p.stem == "mlp_moons_decay")))
    assert outcome.label == "mlp"
    assert outcome.train.n_features == 2
    assert outcome.metrics["val_log_loss"] < 0.5 * outcome.reference_metrics["val_log_loss"]
    assert outcome.metrics["train_log_loss"] > outcome.reference_metrics["train_log_loss"]
    shrunk = [s.cosine for s in outcome.layer_similarity]
    assert all(c is not None and c < 1.0 for c in shrunk)


def test_high_dimensional_demo_overfits_without_decay_and_decay_lowers_the_validation_loss() -> None:
    spec = _spec(next(p for p in EXAMPLES if p.stem == "linear_high_dim_decay"))
    outcome = run_job(spec)
    assert (outcome.train.n_samples, outcome.train.n_features) == (20, 200)
    assert outcome.val is not None and outcome.val.n_samples == 100
    undecayed = outcome.reference.history
    assert undecayed.train_loss[-1] < 1e-3 * undecayed.val_loss[-1]
    # The validation loss barely moves without decay: the random start persists in the unseen directions.
    assert undecayed.val_loss[-1] > 0.5 * undecayed.val_loss[0]
    assert outcome.lam > 0.0
    decayed = outcome.result.history
    assert decayed.val_loss[-1] < 0.1 * undecayed.val_loss[-1]
    assert outcome.metrics["val_mse"] < outcome.reference_metrics["val_mse"]


def test_random_start_of_a_linear_model_is_fixed_by_the_seed() -> None:
    raw = {"model": {"kind": "linear", "init_std": 1.0}, "epochs": 1, "optimizer": {"kind": "gd", "lr": 1e-12}}
    first = run_job(TrainingJobSpec.model_validate(raw))
    again = run_job(TrainingJobSpec.model_validate(raw))
    other = run_job(TrainingJobSpec.model_validate({**raw, "seed": 1}))
    np.testing.assert_array_equal(first.model.W, again.model.W)
    assert float(np.std(first.model.W)) > 0.3
    assert not np.array_equal(first.model.W, other.model.W)
    zero = run_job(TrainingJobSpec.model_validate({**raw, "model": {"kind": "linear"}}))
    assert float(np.abs(zero.model.W).max()) < 1e-9


def test_inline_rows_and_uploaded_csv_train_the_same_model() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 2))
    y = X @ np.array([1.5, -0.5]) + 0.1 * rng.standard_normal(60)
    rows = [[float(a), float(b), float(t)] for (a, b), t in zip(X, y, strict=True)]
    inline = TrainingJobSpec.model_validate(
        {"data": {"kind": "inline", "rows": rows, "columns": ["a", "b", "t"], "label_column": "t"}}
    )
    csv_text = "a,b,t\n" + "\n".join(",".join(repr(v) for v in row) for row in rows)
    upload = TrainingJobSpec.model_validate({"data": {"kind": "upload", "dataset_id": "ds-1", "label_column": "t"}})
    from_rows = run_job(inline)
    from_csv = run_job(upload, uploads={"ds-1": csv_text.encode()}.__getitem__)
    np.testing.assert_array_equal(from_rows.model.W, from_csv.model.W)
    assert from_rows.metrics["val_r2"] > 0.95


def test_upload_errors_are_domain_errors() -> None:
    spec = TrainingJobSpec.model_validate({"data": {"kind": "upload", "dataset_id": "missing"}})
    with pytest.raises(InvalidConfig, match="no upload store"):
        run_job(spec)
    with pytest.raises(InvalidDataset, match="no uploaded dataset with id 'missing'"):
        run_job(spec, uploads={}.__getitem__)
    with pytest.raises(InvalidDataset, match="line 3 has 1 cells"):
        run_job(spec, uploads=lambda _: "a,y\n1,2\n3\n4,5\n")


def test_classification_upload_checked_against_the_model() -> None:
    spec = TrainingJobSpec.model_validate(
        {"model": {"kind": "logistic"}, "data": {"kind": "upload", "dataset_id": "d"}}
    )
    csv_text = "x,label\n" + "\n".join(f"{i},{'abc'[i % 3]}" for i in range(30))
    with pytest.raises(IncompatibleData, match="3 classes; use softmax"):
        run_job(spec, uploads=lambda _: csv_text)
    softmax = spec.model_copy(update={"model": TrainingJobSpec.model_validate({"model": {"kind": "softmax"}}).model})
    outcome = run_job(softmax, uploads=lambda _: csv_text)
    assert outcome.train.class_names == ("a", "b", "c")


def test_cancellation_raises_cancelled_within_one_epoch() -> None:
    spec = TrainingJobSpec.model_validate({"epochs": 10_000})
    seen: list[EpochReport] = []
    with pytest.raises(Cancelled) as info:
        run_job(spec, on_epoch=seen.append, should_stop=lambda: len(seen) >= 3)
    assert len(seen) == 3
    assert info.value.epoch == 4


def test_train_config_maps_the_spec() -> None:
    spec = TrainingJobSpec.model_validate(
        {
            "model": {"kind": "polynomial", "degree": 4},
            "optimizer": {"kind": "adam", "lr": 0.03, "batch_size": 8},
            "schedule": {"kind": "step", "step_size": 7, "gamma": 0.3},
            "regularization": {"kind": "decoupled", "lam": 0.2},
            "early_stopping": {"patience": 5},
            "standardize": False,
            "seed": 9,
        }
    )
    config = train_config(spec)
    assert config.model == "linear"
    assert config.features.degree == 4
    assert not config.features.standardize
    assert (config.optimizer.kind, config.optimizer.lr, config.optimizer.batch_size) == ("adam", 0.03, 8)
    assert (config.schedule.kind, config.schedule.step_size, config.schedule.gamma) == ("step", 7, 0.3)
    assert (config.regularization.kind, config.regularization.lam) == ("decoupled", 0.2)
    assert config.early_stopping is not None
    assert config.early_stopping.patience == 5
    assert config.seed == 9


def test_an_mlp_job_reports_every_layer_against_the_undecayed_run() -> None:
    spec = TrainingJobSpec.model_validate(
        {
            "model": {"kind": "mlp", "hidden": [12, 6], "activation": "tanh", "head": "sigmoid", "init": "xavier"},
            "optimizer": {"kind": "adam", "lr": 0.02},
            "epochs": 60,
            "regularization": {"kind": "decoupled", "lam": 0.2},
            "data": {"kind": "sklearn", "name": "breast_cancer"},
        }
    )
    config = train_config(spec)
    assert config.model == "logistic"
    assert config.network is not None and config.network.hidden == (12, 6)
    outcome = run_job(spec)
    message = completed_message("job-1", outcome)
    assert message.model == "mlp"
    assert message.hidden_layers is not None
    assert [(len(layer.weights), len(layer.weights[0]), len(layer.bias)) for layer in message.hidden_layers] == [
        (12, 30, 12),
        (6, 12, 6),
    ]
    assert len(message.weights or []) == 6 and isinstance(message.bias, float)
    assert message.history is not None
    assert len(message.history.layer_norms) == 60
    assert all(len(norms) == 3 for norms in message.history.layer_norms)
    decayed, undecayed = outcome.result.history.layer_norms[-1], outcome.reference.history.layer_norms[-1]
    assert all(d < u for d, u in zip(decayed, undecayed, strict=True)), (decayed, undecayed)
    assert len(message.layer_similarity) == 3
    for sim, (W, _), (W0, _) in zip(
        message.layer_similarity, outcome.model.layers, outcome.reference.model.layers, strict=True
    ):
        assert sim.l2 == pytest.approx(float(np.linalg.norm(W - W0)))
        assert sim.dot == pytest.approx(float(np.vdot(W, W0)))
        assert sim.cosine is not None and 0.0 < sim.cosine < 1.0
    assert message.metrics["val_accuracy"] > 0.9
    assert TrainingCompleted.model_validate_json(message.model_dump_json()) == message


def test_a_logistic_sweep_without_an_optimizer_runs_lbfgs_to_sklearns_solution() -> None:
    raw = {
        "model": {"kind": "logistic"},
        "data": {"kind": "sklearn", "name": "breast_cancer"},
        "mode": {"kind": "sweep", "lambdas": [0.001, 0.01, 0.1]},
        "validation_split": 0.0,
        "tol": 1e-8,
    }
    spec = TrainingJobSpec.model_validate(raw)
    assert train_config(spec).optimizer.kind == "lbfgs"
    outcome = run_job(spec)
    X = outcome.model.features.transform(outcome.train.X)
    n, lam = X.shape[0], outcome.lam
    ref = LogisticRegression(C=1.0 / (n * lam), tol=1e-10, max_iter=10_000).fit(X, outcome.train.y)
    np.testing.assert_allclose(outcome.model.W[:, 0], ref.coef_[0], atol=1e-5)
