"""The training-worker end to end: API, projector and worker against the real Kafka, Redis and PostgreSQL."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from quartet_contracts.envelope import Envelope
from quartet_contracts.schemas.training import CancelTraining, TrainingRequested
from quartet_shared.dlq import list_dead_letters
from quartet_shared.jobservice import JobOutcome, OnProgress, Progress, RunJob, ShouldStop
from quartet_shared.producer import Producer
from quartet_shared.settings import KernelSettings
from training_worker.api import create_api
from training_worker.bootstrap import Trainer, bootstrap
from training_worker.settings import TrainingSettings
from training_worker.worker import EpochProgress

from tests.support.auth import ADMIN, READER, WRITER
from tests.support.effects import committed_to_end, wait_until
from tests.support.job_sweep import sweep_dead_letter_paths
from tests.support.jobs import assert_png, committed_events, results_for, run_to_success, wait_status
from tests.support.training import EXAMPLES_DIR, example_raw

pytestmark = pytest.mark.integration

COMPLETED = "quartet.training.TrainingCompleted.v1"
CANCELLED = "quartet.training.TrainingCancelled.v1"
FAILED = "quartet.training.TrainingFailed.v1"
MAX_UPLOAD_BYTES = 4096


def example(name: str) -> dict[str, Any]:
    """An example job file of the repository, as a spec."""
    return example_raw(EXAMPLES_DIR / f"{name}.yaml")


def gd_spec(epochs: int, n_samples: int = 200, n_features: int = 3, **extra: Any) -> dict[str, Any]:
    """Full-batch gradient descent on generated linear data."""
    return {
        "model": {"kind": "linear"},
        "optimizer": {"kind": "gd", "lr": 0.01},
        "epochs": epochs,
        "regularization": {"kind": "l2", "lam": 0.01},
        "data": {
            "kind": "generator",
            "generator": {"name": "linear", "n_samples": n_samples, "n_features": n_features},
        },
        **extra,
    }


@dataclasses.dataclass
class Recorded:
    """What the recorder saw of one job: every epoch it reported, and when it was first told to stop."""

    epochs: int = 0
    stop_asked_at: float | None = None
    epochs_when_asked: int | None = None


class Recorder:
    """Wraps the real runner, seeing every epoch report and every answer of the worker's should_stop."""

    def __init__(self, inner: RunJob) -> None:
        self.inner = inner
        self.jobs: dict[str, Recorded] = {}
        self._lock = threading.Lock()

    def __call__(self, job_id: str, spec: Any, on_progress: OnProgress, should_stop: ShouldStop) -> JobOutcome:
        seen = self.jobs.setdefault(job_id, Recorded())

        def progress(p: Progress) -> None:
            assert isinstance(p, EpochProgress)
            with self._lock:
                seen.epochs += 1
            on_progress(p)

        def stop() -> bool:
            asked = should_stop()
            with self._lock:
                if asked and seen.stop_asked_at is None:
                    seen.stop_asked_at = time.monotonic()
                    seen.epochs_when_asked = seen.epochs
            return asked

        return self.inner(job_id, spec, progress, stop)


@pytest.fixture
def trainer(settings: KernelSettings, unique: str) -> Iterator[Trainer]:
    cfg = TrainingSettings(
        **settings.model_dump(),
        topic_prefix=f"t{unique}.",
        progress_interval_s=0.2,
        max_rows=50_000,
        max_epochs=400_000,
        max_upload_bytes=MAX_UPLOAD_BYTES,
    )
    wired = bootstrap(cfg)
    recorded = dataclasses.replace(wired, run=Recorder(wired.run))
    yield recorded
    recorded.close()


@pytest.fixture
def client(trainer: Trainer) -> Iterator[TestClient]:
    with TestClient(create_api(trainer, with_worker=True), headers=ADMIN) as c:
        yield c


def recorder(trainer: Trainer) -> Recorder:
    assert isinstance(trainer.run, Recorder)
    return trainer.run


def results(trainer: Trainer, job_id: str) -> list[str]:
    return results_for(trainer.settings, trainer.kind.topics, job_id)


def upload(client: TestClient, csv: str, **params: Any) -> Any:
    return client.post("/datasets", content=csv.encode(), params=params, headers={"Content-Type": "text/csv"})


# ---- jobs --------------------------------------------------------------------------------------------


def test_a_sweep_job_succeeds_once_with_result_and_plots(client: TestClient, trainer: Trainer) -> None:
    job_id, result = run_to_success(client, example("polynomial_overfitting_sweep"))
    assert result["cached"] is False
    assert result["model"] == "polynomial"
    assert len(result["weights"]) == 15
    assert result["sweep"]["best_lam"] == result["lam"] > 0.0
    assert result["metrics"]["val_mse"] < result["reference_metrics"]["val_mse"]
    assert sorted(result["plots"]) == ["fit", "loss", "validation_curve", "weight_norm"]
    for name in result["plots"]:
        assert_png(client, job_id, name)
    assert client.get(f"/jobs/{job_id}/plots/nothing.png").status_code == 404
    assert results(trainer, job_id) == [COMPLETED]
    listed = client.get("/jobs", params={"status": "succeeded", "limit": 50}).json()
    assert job_id in [j["id"] for j in listed]


def test_an_mlp_job_trains_end_to_end_with_every_layer_reported(client: TestClient, trainer: Trainer) -> None:
    job_id, result = run_to_success(client, example("mlp_wine"))
    assert result["model"] == "mlp"
    assert result["class_names"] == ["class_0", "class_1", "class_2"]
    assert [(len(layer["weights"]), len(layer["bias"])) for layer in result["hidden_layers"]] == [(32, 32), (16, 16)]
    assert [len(row) for row in result["hidden_layers"][0]["weights"]] == [13] * 32
    assert [len(row) for row in result["weights"]] == [16] * 3
    history = result["history"]
    assert len(history["layer_norms"]) == len(history["train_loss"]) == result["epochs_run"] == 150
    final = history["layer_norms"][-1]
    assert history["weight_norm"][-1] == pytest.approx(float(np.linalg.norm(final)))
    assert len(result["layer_similarity"]) == 3
    assert all(0.0 < layer["cosine"] < 1.0 and layer["l2"] > 0.0 for layer in result["layer_similarity"])
    assert result["metrics"]["val_accuracy"] > 0.9
    assert sorted(result["plots"]) == ["layer_norms", "loss", "loss_comparison", "weight_histograms", "weight_norm"]
    for name in ("layer_norms", "loss_comparison", "weight_histograms"):
        assert_png(client, job_id, name)
    assert results(trainer, job_id) == [COMPLETED]


def test_a_result_over_the_brokers_limit_arrives_once_and_whole_by_claim_check(
    client: TestClient, trainer: Trainer
) -> None:
    """Logistic regression on a bundled dataset whose per-epoch history alone passes the broker's 1 MiB: the
    smallest such job of the issue's kind (its 50,000-epoch job has the same shape, three times longer)."""
    epochs = 18_000
    spec = {
        "model": {"kind": "logistic"},
        "optimizer": {"kind": "gd", "lr": 0.1},
        "epochs": epochs,
        "data": {"kind": "sklearn", "name": "breast_cancer"},
    }
    job_id = client.post("/jobs", json=spec).json()["id"]
    wait_status(client, job_id, "succeeded", timeout_s=300)
    answer = client.get(f"/jobs/{job_id}/result")
    assert len(answer.content) > 1024 * 1024
    whole = answer.json()
    assert [len(whole["history"][k]) for k in ("train_loss", "val_loss", "weight_norm")] == [epochs] * 3
    assert len(whole["weights"]) == len(whole["feature_names"]) == 30
    (event,) = [e for e in committed_events(trainer.settings, trainer.kind.topics.results) if e.subject == job_id]
    assert event.type == COMPLETED
    assert len(event.to_kafka()[1]) < 4096, "the event carries a bounded summary"
    assert event.data["history"] is None and event.data["weights"] is None
    assert event.data["result_ref"]["size"] > 1024 * 1024
    assert {k: whole[k] for k in ("metrics", "lam", "epochs_run", "plots")} == {
        k: event.data[k] for k in ("metrics", "lam", "epochs_run", "plots")
    }
    assert client.get(f"/jobs/{job_id}/plots/result-parts.json.png").status_code == 404

    again = client.post("/jobs", json=spec, headers={"Idempotency-Key": "large-again"}).json()["id"]
    assert wait_status(client, again, "succeeded", timeout_s=60)["cached"] is True
    cached = client.get(f"/jobs/{again}/result").json()
    assert cached["history"] == whole["history"] and cached["plots"] == whole["plots"]
    assert results(trainer, again) == [COMPLETED]


def test_a_network_result_with_weights_over_the_brokers_limit_goes_by_claim_check(
    client: TestClient, trainer: Trainer
) -> None:
    """Two wide hidden layers on digits: 64·1024 + 1024·256 weights, several MiB of JSON, in two epochs."""
    spec = {
        "model": {"kind": "mlp", "hidden": [1024, 256], "head": "softmax"},
        "optimizer": {"kind": "adam", "lr": 0.001, "batch_size": 256},
        "epochs": 2,
        "regularization": {"kind": "decoupled", "lam": 0.01},
        "data": {"kind": "sklearn", "name": "digits"},
    }
    job_id = client.post("/jobs", json=spec).json()["id"]
    wait_status(client, job_id, "succeeded", timeout_s=300)
    answer = client.get(f"/jobs/{job_id}/result")
    assert len(answer.content) > 2 * 1024 * 1024
    whole = answer.json()
    assert [(len(layer["weights"]), len(layer["weights"][0])) for layer in whole["hidden_layers"]] == [
        (1024, 64),
        (256, 1024),
    ]
    assert [len(row) for row in whole["weights"]] == [256] * 10
    (event,) = [e for e in committed_events(trainer.settings, trainer.kind.topics.results) if e.subject == job_id]
    assert event.type == COMPLETED
    assert len(event.to_kafka()[1]) < 4096, "the event carries a bounded summary"
    assert event.data["hidden_layers"] is None and event.data["weights"] is None
    assert event.data["result_ref"]["size"] > 1024 * 1024
    assert event.data["layer_similarity"] == whole["layer_similarity"]


def test_progress_is_per_epoch_and_throttled(client: TestClient, trainer: Trainer) -> None:
    job_id = client.post("/jobs", json=gd_spec(epochs=3000)).json()["id"]
    job = wait_status(client, job_id, "succeeded")
    events = committed_events(trainer.settings, trainer.kind.topics.progress)
    mine = [e.data for e in events if e.subject == job_id]
    assert mine, "no progress events"
    # Two fits of 3000 epochs each (regularized and reference): every epoch reached the service's callback...
    assert recorder(trainer).jobs[job_id].epochs == 6000
    # ...but at most one event per 0.2 s left it, plus the last one.
    started = np.datetime64(job["started_at"].replace("Z", ""))
    finished = np.datetime64(job["finished_at"].replace("Z", ""))
    seconds = float((finished - started) / np.timedelta64(1, "ms")) / 1000
    assert len(mine) <= seconds / 0.2 + 3, (len(mine), seconds)
    fractions = [m["progress"] for m in mine]
    assert fractions == sorted(fractions)
    assert mine[-1]["progress"] == 1.0
    assert all(1 <= m["epoch"] <= m["epochs"] == 3000 for m in mine)
    assert all(m["weight_norm"] >= 0 and m["train_loss"] >= 0 for m in mine)


def test_same_key_same_job_and_same_spec_comes_from_the_cache(client: TestClient, trainer: Trainer) -> None:
    spec = example("polynomial_overfitting_sweep")
    first = client.post("/jobs", json=spec, headers={"Idempotency-Key": "train-1"})
    again = client.post("/jobs", json=spec, headers={"Idempotency-Key": "train-1"})
    assert first.status_code == again.status_code == 202
    first_id = first.json()["id"]
    assert again.json()["id"] == first_id
    wait_status(client, first_id, "succeeded")
    computed = client.get(f"/jobs/{first_id}/result").json()

    # The same model spelled differently: λ grid reordered, defaults written out.
    respelled = {**spec, "mode": {**spec["mode"], "lambdas": list(reversed(spec["mode"]["lambdas"]))}}
    respelled["standardize"] = True
    second = client.post("/jobs", json=respelled, headers={"Idempotency-Key": "train-2"})
    second_id = second.json()["id"]
    assert second_id != first_id
    job = wait_status(client, second_id, "succeeded", timeout_s=30)
    assert job["cached"] is True
    cached = client.get(f"/jobs/{second_id}/result").json()
    assert cached["cached"] is True
    assert cached["job_id"] == second_id
    assert cached["weights"] == computed["weights"]
    assert cached["spec_hash"] == computed["spec_hash"]
    assert cached["plots"] == computed["plots"]
    assert client.get(f"/jobs/{second_id}/plots/fit.png").content.startswith(b"\x89PNG")
    assert second_id not in recorder(trainer).jobs, "a cached job must not train again"
    assert results(trainer, first_id) == [COMPLETED]
    assert results(trainer, second_id) == [COMPLETED]


def test_the_same_job_id_published_twice_yields_one_result(client: TestClient, trainer: Trainer) -> None:
    spec = TrainingRequested.model_validate(gd_spec(epochs=50, seed=11))
    envelope = Envelope.of(spec, source="/tests", subject="twice-1", key="twice-1", id="twice-1")
    producer = Producer(trainer.settings)
    producer.send_confirmed(trainer.kind.topics.jobs, envelope)
    producer.send_confirmed(trainer.kind.topics.jobs, envelope)
    producer.close()
    wait_status(client, "twice-1", "succeeded")
    # Once the worker's group has committed past both copies, a second outcome would be on the topic already.
    jobs = trainer.kind.topics.jobs
    wait_until(lambda: committed_to_end(trainer.settings, f"{jobs}-worker", [jobs]), 60, "the duplicate consumed")
    assert results(trainer, "twice-1") == [COMPLETED]


def _start_long_job(client: TestClient, trainer: Trainer) -> str:
    job_id: str = client.post("/jobs", json=gd_spec(epochs=100_000, n_samples=5000, n_features=20)).json()["id"]

    def running() -> bool:
        job = client.get(f"/jobs/{job_id}").json()
        return bool(job["status"] == "running" and job["progress"] > 0)

    wait_until(running, 120, "the job to report progress")
    return job_id


def _assert_stopped_within_one_epoch(trainer: Trainer, job_id: str, asked: float) -> None:
    seen = recorder(trainer).jobs[job_id]
    assert seen.stop_asked_at is not None, "the worker never told the job to stop"
    assert seen.stop_asked_at - asked < 5, "the cancel took too long to reach the worker"
    # should_stop is asked before each epoch: once it said yes, no further epoch may have run.
    assert seen.epochs == seen.epochs_when_asked
    assert seen.epochs < 200_000


def test_delete_cancels_a_running_job_within_one_epoch(client: TestClient, trainer: Trainer) -> None:
    job_id = _start_long_job(client, trainer)
    early = client.get(f"/jobs/{job_id}/result")
    assert early.status_code == 409
    assert early.headers["content-type"].startswith("application/problem+json")
    asked = time.monotonic()
    assert client.delete(f"/jobs/{job_id}").status_code == 202
    job = wait_status(client, job_id, "cancelled", timeout_s=30)
    _assert_stopped_within_one_epoch(trainer, job_id, asked)
    assert job["progress"] < 1.0
    events = committed_events(trainer.settings, trainer.kind.topics.results)
    (outcome,) = [e for e in events if e.subject == job_id]
    assert outcome.type == CANCELLED
    assert outcome.data["epoch"] >= 1


def test_a_cancel_on_the_control_topic_stops_a_running_job(client: TestClient, trainer: Trainer) -> None:
    job_id = _start_long_job(client, trainer)
    producer = Producer(trainer.settings)
    asked = time.monotonic()
    command = Envelope.of(CancelTraining(job_id=job_id), source="/tests", subject=job_id, key=job_id)
    producer.send_confirmed(trainer.kind.topics.control, command)
    producer.close()
    wait_status(client, job_id, "cancelled", timeout_s=30)
    _assert_stopped_within_one_epoch(trainer, job_id, asked)
    assert results(trainer, job_id) == [CANCELLED]


def test_malformed_and_over_budget_jobs_are_dead_lettered_with_reasons(client: TestClient, trainer: Trainer) -> None:
    producer = Producer(trainer.settings)
    malformed = Envelope(
        type="quartet.training.TrainingRequested.v1",
        source="/tests",
        data={"model": {"kind": "quadratic"}, "epochs": -1},
        key="bad-job",
    )
    over = Envelope.of(TrainingRequested.model_validate(gd_spec(epochs=100_000, n_samples=60_000)), source="/tests")
    network = Envelope(
        type="quartet.training.TrainingRequested.v1",
        source="/tests",
        data={"model": {"kind": "mlp", "hidden": [8, 8, 8, 8], "head": "softmax"}},
        key="deep-net",
    )
    empty_layer, wrong_head, too_big = (
        Envelope(type="quartet.training.TrainingRequested.v1", source="/tests", data=data, key=key)
        for key, data in (
            ("empty-layer", {"model": {"kind": "mlp", "hidden": [16, 0]}}),
            ("wrong-head", {"model": {"kind": "mlp", "head": "sigmoid"}, "data": {"kind": "sklearn", "name": "iris"}}),
            ("too-big", {"model": {"kind": "mlp", "hidden": [4096, 4096]}, "epochs": 1000}),
        )
    )
    for envelope in (malformed, over, network, empty_layer, wrong_head, too_big):
        producer.send_confirmed(trainer.kind.topics.jobs, envelope)
    producer.close()

    def dead() -> bool:
        return len(list_dead_letters(trainer.settings, trainer.kind.topics.jobs)) == 6

    wait_until(dead, 60, "six dead letters")
    letters = {letter.ce_id: letter for letter in list_dead_letters(trainer.settings, trainer.kind.topics.jobs)}
    bad = letters[malformed.id]
    assert bad.reason["dlq_error_type"] == "SchemaError"
    assert "model" in bad.reason["dlq_error_message"]
    assert "epochs" in bad.reason["dlq_error_message"]
    assert bad.reason["dlq_original_topic"] == trainer.kind.topics.jobs
    assert {"dlq_original_partition", "dlq_original_offset", "dlq_attempts"} <= set(bad.reason)
    assert {"dlq_first_failure_time", "dlq_last_failure_time"} <= set(bad.reason)
    assert bad.key == "bad-job"
    budget = letters[over.id]
    assert "data.generator.n_samples" in budget.reason["dlq_error_message"]
    assert "50,000" in budget.reason["dlq_error_message"]
    deep = letters[network.id]
    assert deep.reason["dlq_error_type"] == "SchemaError"
    assert "model.mlp.hidden: Tuple should have at most 3 items" in deep.reason["dlq_error_message"]
    assert "model.mlp.hidden.1" in letters[empty_layer.id].reason["dlq_error_message"]
    assert "model.head" in letters[wrong_head.id].reason["dlq_error_message"]
    assert "model.hidden" in letters[too_big.id].reason["dlq_error_message"]
    assert "multiply-adds" in letters[too_big.id].reason["dlq_error_message"]
    wait_until(lambda: results(trainer, malformed.id) == [FAILED], 60, "the malformed job's failed outcome")


def test_every_way_the_worker_gives_up_on_a_job_ends_it_failed_with_one_result(trainer: Trainer, unique: str) -> None:
    """Undecodable, schema mismatch, over the limit, exhausted retries, over the event bound, refused by the broker:
    each job ends failed with a problem naming why, exactly one TrainingFailed event and its input dead-lettered."""
    over_limit = (gd_spec(epochs=100_000, n_samples=60_000), "50,000")
    with TestClient(create_api(trainer, with_worker=False), headers=ADMIN) as api:
        forced = sweep_dead_letter_paths(trainer, api, gd_spec(epochs=20), over_limit, unique)
    assert len(forced) == 6


def test_bad_input_is_422_naming_the_field(client: TestClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"model": {"kind": "quadratic"}}, "model"),
        ({"optimizer": {"kind": "newton"}}, "optimizer"),
        ({"optimizer": {"kind": "lbfgs"}, "regularization": {"kind": "l1", "lam": 0.1}}, "optimizer"),
        ({"regularization": {"kind": "l2", "lam": -0.1}}, "regularization.lam"),
        ({"optimizer": {"kind": "gd", "lr": 0}}, "optimizer.lr"),
        ({"optimizer": {"kind": "adam", "lr": -1}}, "optimizer.lr"),
        ({"mode": {"kind": "sweep", "lambdas": [0.1, -1]}}, "mode.lambdas"),
        ({"data": {"kind": "inline", "rows": [[1, 2, 3], [4, 5], [6, 7, 8]]}}, "data.rows"),
        ({"data": {"kind": "inline", "rows": [[1, 2], [3, 4], [5, 6]], "columns": ["a"]}}, "data.columns"),
        ({"data": {"kind": "inline", "rows": [[1, 2], [3, 4], [5, 6]], "label_column": 5}}, "data.label_column"),
        ({"model": {"kind": "logistic"}, "data": {"kind": "sklearn", "name": "iris"}}, "model"),
        (gd_spec(epochs=10_000, mode={"kind": "sweep"}), "epochs"),
        (gd_spec(epochs=10, n_samples=60_000), "data.generator.n_samples"),
        (gd_spec(epochs=150_000, n_samples=20_000, n_features=50), "epochs"),
        ({"data": {"kind": "upload", "dataset_id": "no-such-dataset"}}, "data.dataset_id"),
        ({"model": {"kind": "mlp", "hidden": [16, 0]}}, "model.hidden.1"),
        ({"model": {"kind": "mlp", "hidden": [8, 8, 8, 8]}}, "model.hidden"),
        ({"model": {"kind": "mlp", "activation": "sigmoid"}}, "model.activation"),
        ({"model": {"kind": "mlp", "head": "sigmoid"}, "data": {"kind": "sklearn", "name": "iris"}}, "model.head"),
        ({"model": {"kind": "mlp", "hidden": [4096, 4096]}, "epochs": 1000}, "model.hidden"),
    ]
    for spec, field in cases:
        answer = client.post("/jobs", json=spec)
        assert answer.status_code == 422, (field, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        problem = answer.json()
        assert field in [e["field"] for e in problem["errors"]], (field, problem)
        assert field in problem["detail"]


def test_a_job_that_fails_in_training_gets_a_problem(client: TestClient, trainer: Trainer) -> None:
    spec = gd_spec(epochs=1000)
    spec["optimizer"]["lr"] = 50.0
    job_id = client.post("/jobs", json=spec).json()["id"]
    job = wait_status(client, job_id, "failed")
    assert job["problem"]["error_type"] == "Diverged"
    assert job["problem"]["field"] == "optimizer.lr"
    assert "learning rate" in job["problem"]["detail"]
    assert client.get(f"/jobs/{job_id}/result").status_code == 409
    assert results(trainer, job_id) == [FAILED]


# ---- datasets ----------------------------------------------------------------------------------------


def linear_csv(rows: int = 40, seed: int = 0) -> str:
    """price = 3·area − 2·age + 1 with a little noise; the label in the middle column."""
    rng = np.random.default_rng(seed)
    area, age = rng.uniform(0, 5, rows), rng.uniform(0, 3, rows)
    price = 3 * area - 2 * age + 1 + 0.001 * rng.standard_normal(rows)
    lines = ["area,price,age", *(f"{a:.6f},{p:.6f},{g:.6f}" for a, p, g in zip(area, price, age, strict=True))]
    return "\n".join(lines) + "\n"


def test_upload_stores_a_csv_and_describes_it(client: TestClient) -> None:
    csv = linear_csv()
    answer = upload(client, csv, name="houses", label_column="price")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert len(body["id"]) == 64
    assert body["rows"] == 40
    assert body["columns"] == ["area", "price", "age"]
    assert body["label_column"] == "price"
    assert body["task"] == "regression"
    assert answer.headers["location"].endswith(f"/datasets/{body['id']}")
    described = client.get(f"/datasets/{body['id']}").json()
    assert described["name"] == "houses"
    assert described["size_bytes"] == len(csv.encode())
    again = upload(client, csv, label_column="1")
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    assert again.json()["label_column"] == "price"
    classes = upload(client, "a,b,kind\n1,2,cat\n3,4,dog\n5,6,cat\n")
    assert classes.status_code == 201
    assert classes.json()["task"] == "classification"
    assert classes.json()["class_names"] == ["cat", "dog"]
    missing = client.get("/datasets/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("csv", "params", "field", "says"),
    [
        ("a,b,y\n1,2,3\n4,5\n6,7,8\n", {}, "body", "line 3 has 2 cells, expected 3"),
        ("a,b,y\n1,2,3\n4,abc,6\n", {}, "body", "'abc' is not a number"),
        ("a,b,y\n1,2,3\n4,nan,6\n", {}, "body", "NaN"),
        ("a,b,y\n1,2,3\n4,5,nan\n", {}, "body", "label column 'y': missing, NaN or infinite"),
        ("", {}, "body", "empty"),
        ("\n\n", {}, "body", "empty"),
        ("a,b,y\n", {}, "body", "no data rows"),
        ("a,b,y\n1,2,3\n4,5,6\n", {"label_column": "price"}, "label_column", "label column 'price' not found"),
        ("a,b,y\n1,2,3\n4,5,6\n", {"label_column": "7"}, "label_column", "out of range"),
        ("a,y\n1,2\n3,2\x00\n5,1\n", {}, "body", "line 3 contains a NUL character"),
        ("a,b,y\n1,2,3\n", {}, "body", "1 data rows; a dataset needs at least 3"),
    ],
    ids=[
        "ragged", "non-numeric", "nan-feature", "nan-label", "empty", "blank", "header-only", "no-label", "index",
        "nul", "one-row",
    ],
)  # fmt: skip
def test_bad_csv_is_422_naming_the_problem(
    client: TestClient, csv: str, params: dict[str, str], field: str, says: str
) -> None:
    answer = upload(client, csv, **params)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["title"] == "Invalid dataset"
    assert says in problem["detail"]
    assert problem["errors"] == [{"field": field, "message": problem["detail"]}]


def test_a_dataset_name_that_looks_like_a_path_is_422(client: TestClient) -> None:
    answer = upload(client, "a,y\n1,2\n3,4\n5,6\n", name="../../x")
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "query.name"


def test_upload_over_the_size_limit_is_413(client: TestClient) -> None:
    csv = linear_csv(rows=200)
    assert len(csv) > MAX_UPLOAD_BYTES
    answer = upload(client, csv)
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert f"over the limit of {MAX_UPLOAD_BYTES:,} bytes" in answer.json()["detail"]

    def chunks() -> Iterator[bytes]:
        # No Content-Length: the limit must hold while the body streams in.
        yield from csv.encode().splitlines(keepends=True)

    streamed = client.post("/datasets", content=chunks(), headers={"Content-Type": "text/csv"})
    assert streamed.status_code == 413


def test_a_form_upload_is_415_with_a_hint(client: TestClient) -> None:
    answer = client.post("/datasets", files={"file": ("x.csv", b"a,y\n1,2\n3,4\n", "text/csv")})
    assert answer.status_code == 415
    assert "text/csv" in answer.json()["detail"]


def test_a_job_on_an_uploaded_dataset_trains_on_it(client: TestClient, trainer: Trainer) -> None:
    dataset = upload(client, linear_csv(rows=40), label_column="price").json()
    spec: dict[str, Any] = {
        "model": {"kind": "linear"},
        "optimizer": {"kind": "closed_form"},
        "regularization": {"kind": "none"},
        "standardize": False,
        "data": {"kind": "upload", "dataset_id": dataset["id"], "label_column": "price"},
    }
    job_id = client.post("/jobs", json=spec).json()["id"]
    wait_status(client, job_id, "succeeded")
    result = client.get(f"/jobs/{job_id}/result").json()
    assert result["feature_names"] == ["area", "age"]
    assert result["weights"] == pytest.approx([3.0, -2.0], abs=1e-2)
    assert result["bias"] == pytest.approx(1.0, abs=1e-2)
    assert result["metrics"]["train_r2"] > 0.999
    wrong_label = {**spec, "data": {**spec["data"], "label_column": "colour"}}
    answer = client.post("/jobs", json=wrong_label)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "data.label_column"
    assert results(trainer, job_id) == [COMPLETED]


def test_a_classification_job_on_an_uploaded_dataset_reports_its_classes(client: TestClient) -> None:
    rng = np.random.default_rng(4)
    lines = ["x1,x2,species"]
    for i in range(60):
        centre = (-2.0, -2.0) if i % 2 else (2.0, 2.0)
        x = rng.normal(centre, 0.5)
        lines.append(f"{x[0]:.4f},{x[1]:.4f},{'fox' if i % 2 else 'owl'}")
    dataset = upload(client, "\n".join(lines)).json()
    spec = {
        "model": {"kind": "logistic"},
        "optimizer": {"kind": "gd", "lr": 0.5},
        "epochs": 100,
        "data": {"kind": "upload", "dataset_id": dataset["id"]},
    }
    job_id = client.post("/jobs", json=spec).json()["id"]
    wait_status(client, job_id, "succeeded")
    result = client.get(f"/jobs/{job_id}/result").json()
    assert result["class_names"] == ["fox", "owl"]
    assert result["metrics"]["val_accuracy"] == 1.0


# ---- service -----------------------------------------------------------------------------------------


def test_readiness_reports_kafka_redis_and_database(client: TestClient) -> None:
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.text
    assert answer.json()["checks"] == {"kafka": "ok", "redis": "ok", "database": "ok"}


def test_uploads_and_jobs_need_a_key_while_a_datasets_description_stays_open(client: TestClient) -> None:
    csv = linear_csv()
    for who, status in (({"Authorization": ""}, 401), (READER, 403)):
        refused = client.post("/datasets", content=csv.encode(), headers={"Content-Type": "text/csv", **who})
        assert refused.status_code == status, refused.text
        assert client.post("/jobs", json={"model": {"kind": "linear"}}, headers=who).status_code == status
    assert refused.json()["required_scope"] == "jobs:write"
    stored = client.post("/datasets", content=csv.encode(), headers={"Content-Type": "text/csv", **WRITER})
    assert stored.status_code in (200, 201), stored.text
    assert client.get(f"/datasets/{stored.json()['id']}", headers={"Authorization": ""}).status_code == 200


def test_settings_default_to_port_8001_and_training_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINING_MAX_ROWS", "1234")
    monkeypatch.setenv("TRAINING_BLAS_THREADS", "2")
    cfg = TrainingSettings()
    assert cfg.port == 8001
    assert cfg.max_rows == 1234
    assert cfg.host == "127.0.0.1"
    assert cfg.blas_threads == 2
    assert cfg.service_name == "training-worker"
    assert cfg.transaction_timeout_ms >= cfg.job_timeout_s * 1000
