"""The path-planner service end to end: API, projector and worker against the real Kafka, Redis and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient
from path_planner.api import create_api
from path_planner.bootstrap import Planner, bootstrap
from path_planner.settings import PlannerSettings
from quartet_contracts.envelope import Envelope
from quartet_contracts.schemas.planning import PlanProgressed, PlanRequested, normalized_spec_hash
from quartet_shared.dlq import list_dead_letters
from quartet_shared.producer import Producer
from quartet_shared.settings import KernelSettings

from tests.support.auth import ADMIN, READER
from tests.support.effects import committed_to_end, read_all, wait_until
from tests.support.job_sweep import sweep_dead_letter_paths
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
def terrain_dir(tmp_path: Path) -> Path:
    """The service's terrain directory: a readable 400 x 400 heightmap and a file that is not one."""
    root = tmp_path / "terrain"
    root.mkdir()
    np.save(root / "flat.npy", np.full((400, 400), 50.0))
    (root / "broken.npz").write_bytes(b"this is not a zip archive")
    return root


@pytest.fixture
def planner(settings: KernelSettings, unique: str, terrain_dir: Path) -> Iterator[Planner]:
    cfg = PlannerSettings(
        **settings.model_dump(),
        topic_prefix=f"t{unique}.",
        max_evaluations=500_000,
        progress_interval_s=0.1,
        terrain_dir=terrain_dir,
    )
    wired = bootstrap(cfg)
    yield wired
    wired.close()


@pytest.fixture
def client(planner: Planner) -> Iterator[TestClient]:
    with TestClient(create_api(planner, with_worker=True), headers=ADMIN) as c:
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


def test_a_result_over_the_event_bound_arrives_once_and_whole_by_claim_check(
    settings: KernelSettings, unique: str, terrain_dir: Path
) -> None:
    """The issue's shape (small population, many iterations, three other optimizers) scaled down against a bound
    scaled down with it: 1,500 iterations give a 120 kB result where 20,000 gave 1.5 MB, and the event is held
    to 16 KiB where the default is 256 KiB. (tests/contracts/test_claimcheck.py bounds the schemas' largest.)"""
    cfg = PlannerSettings(
        **{**settings.model_dump(), "max_event_bytes": 16 * 1024},
        topic_prefix=f"c{unique}.",
        max_evaluations=500_000,
        terrain_dir=terrain_dir,
    )
    planner = bootstrap(cfg)
    spec = small_spec(population=2, iterations=1_500)
    spec["compare"] = ["boa", "pso", "spso"]
    try:
        with TestClient(create_api(planner, with_worker=True), headers=ADMIN) as client:
            job_id = client.post("/jobs", json=spec).json()["id"]
            wait_status(client, job_id, "succeeded", timeout_s=240)
            answer = client.get(f"/jobs/{job_id}/result")
            events = [e for e in read_all(planner.settings, [planner.kind.topics.results]) if e.subject == job_id]
    finally:
        planner.close()
    assert len(answer.content) > 100_000
    whole = answer.json()
    assert len(whole["fitness_curve"]) == 1_500
    assert [(r["optimizer"], len(r["fitness_curve"])) for r in whole["comparison"]] == [
        ("boa", 1_500),
        ("pso", 1_500),
        ("spso", 1_500),
    ]
    assert len(whole["path"]) > 2
    (event,) = events
    assert event.type == "quartet.planning.PlanCompleted.v1"
    assert event.data["path"] == event.data["fitness_curve"] == []
    assert [r["best_cost"] for r in event.data["comparison"]] == [r["best_cost"] for r in whole["comparison"]]
    assert event.data["result_ref"]["size"] > 100_000
    assert len(event.to_kafka()[1]) < 16 * 1024


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


def bad_specs() -> list[tuple[str, dict[str, Any], str, str]]:
    """(case, spec, field named, words of the message) for each kind of bad input the issue lists."""

    def scenario(**changes: Any) -> dict[str, Any]:
        spec = small_spec()
        spec["scenario"].update(changes)
        return spec

    on_file = {"terrain": {"kind": "file", "path": "broken.npz"}}
    boxed = {"no_fly_zones": [{"x_min": 0, "x_max": 60, "y_min": 0, "y_max": 60, "top": 1000}]}
    return [
        ("start outside the map", scenario(start=[900, 20, 60]), "scenario.start", "outside bounds"),
        ("goal outside the map", scenario(goal=[380, -4, 60]), "scenario.goal", "outside bounds"),
        ("start inside a threat", scenario(start=[180, 170, 60]), "scenario.start", "inside threats[0]"),
        ("goal inside a threat", scenario(goal=[285, 295, 60]), "scenario.goal", "inside threats[1]"),
        ("start inside a no-fly box", scenario(**boxed), "scenario.start", "inside no-fly zone 0"),
        ("unreadable terrain file", scenario(**on_file), "scenario.terrain.path", "cannot read"),
        ("missing terrain file", scenario(terrain={"kind": "file", "path": "gone.npz"}), "scenario.terrain.path",
         "not found"),
        ("bounds beyond the terrain", scenario(terrain={"kind": "file", "path": "flat.npy"}, bounds={"x": [1, 900],
         "y": [1, 400]}, goal=[800, 380, 60]), "scenario.bounds", "exceeds the terrain"),
        ("zero population", small_spec(population=0), "optimizer.population", "greater than or equal to 2"),
        ("negative iterations", small_spec(iterations=-5), "optimizer.iterations", "greater than or equal to 1"),
        ("zero evaluation cap", small_spec(max_evaluations=0), "optimizer.max_evaluations", "greater than 0"),
        ("over the service's limit", small_spec(population=30, iterations=20_000), "optimizer.iterations",
         "over this service's limit of 500,000"),
        ("over the hard maximum", small_spec(population=5000, iterations=401), "optimizer", "exceeds the maximum"),
        ("terrain grid too large", scenario(terrain={"kind": "gaussian", "cell_size": 0.1}), "scenario.bounds",
         "over the maximum"),
        ("bounds of 1e308 over a tiny cell", scenario(terrain={"kind": "gaussian", "cell_size": 1e-300},
         bounds={"x": [1, 1e308], "y": [1, 1e308]}), "scenario.bounds", "over the maximum"),
    ]  # fmt: skip


@pytest.mark.parametrize("case", [c[0] for c in bad_specs()])
def test_bad_input_is_422_naming_the_field(client: TestClient, case: str) -> None:
    (spec, field, words) = next(c[1:] for c in bad_specs() if c[0] == case)
    before = client.get("/jobs", params={"limit": 500}).json()
    answer = client.post("/jobs", json=spec)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    errors = {e["field"]: e["message"] for e in answer.json()["errors"]}
    assert field in errors, answer.json()
    assert words in errors[field], answer.json()
    assert client.get("/jobs", params={"limit": 500}).json() == before  # no job was created


def test_bad_jobs_on_kafka_are_dead_lettered_with_their_reason(client: TestClient, planner: Planner) -> None:
    producer = Producer(planner.settings)
    sent: dict[str, tuple[str, str]] = {}
    for _case, spec, field, words in bad_specs():
        envelope = Envelope(type="quartet.planning.PlanRequested.v1", source="/tests", data=spec)
        producer.send(planner.kind.topics.jobs, envelope)
        sent[envelope.id] = (field, words)
    good = Envelope(type="quartet.planning.PlanRequested.v1", source="/tests", data=small_spec(iterations=5))
    producer.send(planner.kind.topics.jobs, good)
    producer.close()

    def all_dead() -> bool:
        return len(list_dead_letters(planner.settings, planner.kind.topics.jobs)) >= len(sent)

    wait_until(all_dead, 120, "every bad job to be dead-lettered")
    letters = {d.ce_id: d for d in list_dead_letters(planner.settings, planner.kind.topics.jobs)}
    assert set(letters) == set(sent)
    for job_id, (field, words) in sent.items():
        message = letters[job_id].reason["dlq_error_message"]
        assert field in message and words in message, (field, words, message)
        assert letters[job_id].reason["dlq_original_topic"] == planner.kind.topics.jobs
    # the good job behind them is processed; each bad one ends with one failed outcome naming why
    wait_until(lambda: results_for(planner, good.id) == ["quartet.planning.PlanCompleted.v1"], 60, "the good job")
    outcomes = read_all(planner.settings, [planner.kind.topics.results], idle_ms=2000)
    mine = [e for e in outcomes if e.subject in sent]
    assert sorted(e.subject or "" for e in mine) == sorted(sent)
    for event in mine:
        assert event.type == "quartet.planning.PlanFailed.v1"
        field, _words = sent[event.subject or ""]
        assert field in event.data["error"], (field, event.data)


def test_every_way_the_worker_gives_up_on_a_job_ends_it_failed_with_one_result(planner: Planner, unique: str) -> None:
    """Undecodable, schema mismatch, over the limit, exhausted retries, over the event bound, refused by the broker:
    each job ends failed with a problem naming why, exactly one PlanFailed event and its input dead-lettered."""
    over_limit = (small_spec(population=30, iterations=20_000), "over this service's limit of 500,000")
    with TestClient(create_api(planner, with_worker=False), headers=ADMIN) as api:
        forced = sweep_dead_letter_paths(planner, api, small_spec(iterations=5), over_limit, unique)
    assert len(forced) == 6


def test_progress_names_the_optimizer_of_each_run(client: TestClient, planner: Planner) -> None:
    spec = small_spec(iterations=15)
    spec["compare"] = ["boa", "astar"]
    job_id, result = run_to_success(client, spec)
    events = read_all(planner.settings, [planner.kind.topics.progress], idle_ms=2000)
    mine = [PlanProgressed.model_validate(e.data) for e in events if e.subject == job_id]
    assert mine, "no progress events"
    assert all(p.optimizer in ("iboa", "boa", "astar") for p in mine), mine
    assert mine[0].optimizer == "iboa" and mine[0].iteration == 1
    assert mine[-1].optimizer == "astar" and mine[-1].progress == 1.0 and mine[-1].iterations == 31
    assert [c["optimizer"] for c in result["comparison"]] == ["boa", "astar"]
    assert sorted(result["plots"]) == ["fitness", "fitness_compare", "path_3d", "top_view"]
    assert_png(client, job_id, "fitness_compare")


def test_a_scenario_without_a_feasible_path_succeeds_with_a_best_effort_path_marked_infeasible(
    client: TestClient,
) -> None:
    spec = small_spec()
    # a row of overlapping threat cylinders across the whole map between start and goal
    spec["scenario"]["threats"] = [{"x": x, "y": 200, "radius": 12} for x in range(0, 401, 20)]
    job_id, result = run_to_success(client, spec)
    assert result["feasible"] is False
    assert any("clips threat" in p or "collide" in p for p in result["problems"]), result["problems"]
    assert len(result["path"]) > 2 and len(result["waypoints"]) == 8
    assert result["best_cost"] >= 1e6  # the paper's infinite cost, kept finite and ranked
    assert_png(client, job_id, "path_3d")


def test_the_same_job_id_twice_on_kafka_yields_one_result_and_the_cache_is_in_redis(
    client: TestClient, planner: Planner
) -> None:
    spec = small_spec(iterations=10)
    envelope = Envelope(type="quartet.planning.PlanRequested.v1", source="/tests", data=spec, key="twice")
    producer = Producer(planner.settings)
    producer.send_confirmed(planner.kind.topics.jobs, envelope)
    producer.send_confirmed(planner.kind.topics.jobs, envelope)
    producer.close()
    wait_until(lambda: bool(results_for(planner, envelope.id)), 90, "the job's result")
    # Once the worker's group has committed past both copies, a second, wrong, result would be on the topic already.
    jobs = planner.kind.topics.jobs
    wait_until(lambda: committed_to_end(planner.settings, f"{jobs}-worker", [jobs]), 60, "the duplicate consumed")
    assert results_for(planner, envelope.id) == ["quartet.planning.PlanCompleted.v1"]
    spec_hash = normalized_spec_hash(PlanRequested.model_validate(spec))
    cached = planner.redis.call("get", lambda r: r.get(f"quartet:results:planning:{spec_hash}"), None)
    assert cached is not None, "no Redis copy of the result under its spec hash"
    assert json.loads(cached)["job_id"] == envelope.id


def test_openapi_documents_the_plan_spec_with_an_example(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    body = doc["paths"]["/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"] == "#/components/schemas/PlanRequested"
    schema = doc["components"]["schemas"]["PlanRequested"]
    assert {"scenario", "optimizer", "compare", "seed"} <= set(schema["properties"])
    (example,) = schema["examples"]
    assert PlanRequested.model_validate(example).compare == ["spso", "boa"]
    assert client.get("/docs").status_code == 200
    # the documented example is a job the service accepts
    assert client.post("/jobs", json=example).status_code == 202


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


def test_submitting_cancelling_and_listing_need_a_key(client: TestClient) -> None:
    anonymous = {"Authorization": ""}
    assert client.post("/jobs", json=small_spec(), headers=anonymous).status_code == 401
    assert client.delete("/jobs/nope", headers=anonymous).status_code == 401
    assert client.get("/jobs", headers=anonymous).status_code == 401
    assert client.get("/jobs", headers=READER).status_code == 200
    assert client.post("/jobs", json=small_spec(), headers=READER).json()["required_scope"] == "jobs:write"


def test_readiness_reports_kafka_redis_and_database(client: TestClient) -> None:
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.text
    assert answer.json()["checks"] == {"kafka": "ok", "redis": "ok", "database": "ok"}


def test_settings_default_to_port_8002_and_planner_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANNER_MAX_EVALUATIONS", "1234")
    cfg = PlannerSettings()
    assert cfg.port == 8002
    assert cfg.max_evaluations == 1234
    assert cfg.host == "127.0.0.1"
    assert cfg.service_name == "path-planner"
