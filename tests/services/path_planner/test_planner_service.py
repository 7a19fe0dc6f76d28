"""The path-planner service end to end: API, projector and worker against the real Kafka, Redis and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from path_planner.api import create_api
from path_planner.bootstrap import Planner, bootstrap
from path_planner.settings import PlannerSettings
from quartet_shared.dlq import list_dead_letters
from quartet_shared.envelope import Envelope
from quartet_shared.producer import Producer
from quartet_shared.settings import KernelSettings

from tests.support.effects import wait_until
from tests.support.jobs import assert_png, run_to_success, wait_status
from tests.support.jobs import results_for as job_results

pytestmark = pytest.mark.integration

SCENARIO = Path(__file__).resolve().parents[3] / "services" / "path-planner" / "scenarios" / "gaussian-peaks.yaml"


def small_spec(**optimizer: Any) -> dict[str, Any]:
    """The Gaussian-peaks scenario on a small budget and without comparison runs."""
    spec: dict[str, Any] = yaml.safe_load(SCENARIO.read_text())
    spec["optimizer"] = {"name": "iboa", "population": 20, "iterations": 20, **optimizer}
    spec["compare"] = []
    return spec


@pytest.fixture
def planner(settings: KernelSettings, unique: str) -> Iterator[Planner]:
    cfg = PlannerSettings(
        **settings.model_dump(),
        topic_prefix=f"t{unique}.",
        max_evaluations=500_000,
        progress_interval_s=0.1,
    )
    wired = bootstrap(cfg)
    yield wired
    wired.close()


@pytest.fixture
def client(planner: Planner) -> Iterator[TestClient]:
    with TestClient(create_api(planner, with_worker=True)) as c:
        yield c


def results_for(planner: Planner, job_id: str) -> list[str]:
    """The ce_types of the committed result events about `job_id`."""
    return job_results(planner.settings, planner.kind.topics, job_id)


def test_a_job_succeeds_once_with_result_and_plots(client: TestClient, planner: Planner) -> None:
    job_id, result = run_to_success(client, small_spec())
    assert sorted(result["plots"]) == ["fitness", "path_3d", "top_view"]
    assert len(result["fitness_curve"]) == 20
    assert_png(client, job_id, "path_3d")
    assert client.get(f"/jobs/{job_id}/plots/nothing.png").status_code == 404
    assert results_for(planner, job_id) == ["quartet.planning.PlanCompleted.v1"]
    listed = client.get("/jobs", params={"status": "succeeded", "limit": 50}).json()
    assert job_id in [j["id"] for j in listed]
    assert all(j["status"] == "succeeded" for j in listed)


def test_same_key_same_job_and_same_spec_comes_from_the_cache(client: TestClient, planner: Planner) -> None:
    spec = small_spec()
    first = client.post("/jobs", json=spec, headers={"Idempotency-Key": "order-1"})
    again = client.post("/jobs", json=spec, headers={"Idempotency-Key": "order-1"})
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    wait_status(client, first.json()["id"], "succeeded")
    computed = client.get(f"/jobs/{first.json()['id']}/result").json()

    second = client.post("/jobs", json=spec, headers={"Idempotency-Key": "order-2"})
    second_id = second.json()["id"]
    assert second_id != first.json()["id"]
    job = wait_status(client, second_id, "succeeded", timeout_s=30)
    assert job["cached"] is True
    cached = client.get(f"/jobs/{second_id}/result").json()
    assert cached["cached"] is True
    assert cached["best_cost"] == computed["best_cost"]
    assert cached["job_id"] == second_id
    assert client.get(f"/jobs/{second_id}/plots/fitness.png").content.startswith(b"\x89PNG")
    assert results_for(planner, first.json()["id"]) == ["quartet.planning.PlanCompleted.v1"]
    assert results_for(planner, second_id) == ["quartet.planning.PlanCompleted.v1"]


def test_cancel_stops_a_running_job(client: TestClient, planner: Planner) -> None:
    answer = client.post("/jobs", json=small_spec(population=20, iterations=20_000))
    job_id = answer.json()["id"]

    def started() -> bool:
        job = client.get(f"/jobs/{job_id}").json()
        return bool(job["status"] == "running" and job["progress"] > 0)

    wait_until(started, 60, "the job to report progress")
    early = client.get(f"/jobs/{job_id}/result")
    assert early.status_code == 409
    assert early.headers["content-type"].startswith("application/problem+json")
    asked = time.monotonic()
    assert client.delete(f"/jobs/{job_id}").status_code == 202
    job = wait_status(client, job_id, "cancelled", timeout_s=30)
    assert time.monotonic() - asked < 10
    assert job["progress"] < 0.5
    assert results_for(planner, job_id) == ["quartet.planning.PlanCancelled.v1"]


def test_bad_input_is_422_naming_the_field(client: TestClient) -> None:
    outside = small_spec()
    outside["scenario"]["start"] = [900, 20, 60]
    over = small_spec(population=30, iterations=20_000)
    cases = [
        (outside, "scenario.start"),
        (small_spec(population=0), "optimizer.population"),
        (small_spec(iterations=-5), "optimizer.iterations"),
        (over, "optimizer.iterations"),
    ]
    for spec, field in cases:
        answer = client.post("/jobs", json=spec)
        assert answer.status_code == 422, (field, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in answer.json()["errors"]], answer.json()


def test_a_malformed_job_message_is_dead_lettered_with_its_reason(client: TestClient, planner: Planner) -> None:
    producer = Producer(planner.settings)
    bad = Envelope(type="quartet.planning.PlanRequested.v1", source="/tests", data={"seed": -1}, key="bad-job")
    producer.send(planner.kind.topics.jobs, bad)
    producer.close()

    def dead() -> bool:
        return bool(list_dead_letters(planner.settings, planner.kind.topics.jobs))

    wait_until(dead, 60, "the dead letter")
    (letter,) = list_dead_letters(planner.settings, planner.kind.topics.jobs)
    assert letter.ce_id == bad.id
    assert letter.reason["dlq_error_type"] == "SchemaError"
    assert "scenario" in letter.reason["dlq_error_message"]


def test_unknown_job_is_404_problem(client: TestClient) -> None:
    for path in ("/jobs/nope", "/jobs/nope/result", "/jobs/nope/plots/fitness.png"):
        answer = client.get(path)
        assert answer.status_code == 404
        assert answer.json()["status"] == 404
    assert client.delete("/jobs/nope").status_code == 404


def test_readiness_reports_kafka_redis_and_database(client: TestClient) -> None:
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.text
    assert answer.json()["checks"] == {"kafka": "ok", "redis": "ok", "database": "ok"}


def test_settings_default_to_port_8002_and_planner_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANNER_MAX_EVALUATIONS", "1234")
    cfg = PlannerSettings()
    assert cfg.port == 8002
    assert cfg.max_evaluations == 1234
    assert cfg.host == "0.0.0.0"
    assert cfg.service_name == "path-planner"
