"""The job service's durable stores (artifacts and results by spec hash) and its router, without servers."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from quartet_contracts.schemas.planning import split_plan_result
from quartet_shared.artifacts import ArtifactStore, ResultStore
from quartet_shared.db import make_engine
from quartet_shared.http import create_app
from quartet_shared.jobs import JobStore
from quartet_shared.jobservice import JobApi, JobTopics, job_router
from sqlalchemy import Engine

from tests.support.scripted_jobs import kind_for


def engine(tmp_path: Path) -> Engine:
    return make_engine(f"sqlite:///{tmp_path / 'stores.sqlite3'}")


def test_artifacts_upsert_and_copy(tmp_path: Path) -> None:
    store = ArtifactStore(engine(tmp_path))
    store.put_all("a", {"fitness": b"one", "path_3d": b"two"})
    store.put("a", "fitness", b"again")
    assert store.names("a") == ["fitness", "path_3d"]
    artifact = store.get("a", "fitness")
    assert artifact is not None
    assert (artifact.data, artifact.content_type) == (b"again", "image/png")
    assert store.copy("a", "b") == ["fitness", "path_3d"]
    assert store.copy("a", "b") == ["fitness", "path_3d"]
    copied = store.get("b", "path_3d")
    assert copied is not None
    assert copied.data == b"two"
    assert store.get("b", "missing") is None


def test_a_rerun_replaces_a_jobs_stored_parts_and_never_adds_a_second_copy(tmp_path: Path) -> None:
    store = ArtifactStore(engine(tmp_path))
    first = store.put_parts("job", {"history": {"train_loss": [3.0, 2.0]}})
    assert store.put_parts("job", {"history": {"train_loss": [3.0, 2.0]}}) == first
    rerun = store.put_parts("job", {"history": {"train_loss": [3.0, 1.0]}})
    assert store.names("job") == [first.name]
    assert store.get_parts("job", rerun) == {"history": {"train_loss": [3.0, 1.0]}}
    with pytest.raises(ValueError, match="does not match its reference"):
        store.get_parts("job", first)
    assert store.get_parts("other", rerun) is None


def test_results_keep_the_first_result_per_spec_hash_and_kind(tmp_path: Path) -> None:
    eng = engine(tmp_path)
    planning = ResultStore(eng, "planning")
    training = ResultStore(eng, "training")
    assert planning.get("h") is None
    planning.put("h", "job-1", {"best": 1})
    planning.put("h", "job-2", {"best": 2})
    found = planning.get("h")
    assert found is not None
    assert (found.job_id, found.result) == ("job-1", {"best": 1})
    assert training.get("h") is None


def test_the_router_documents_the_contract_job_api() -> None:
    app = create_app(title="jobs")
    app.include_router(job_router(kind_for(JobTopics.of("planning"))))
    paths = TestClient(app).get("/openapi.json").json()["paths"]
    assert set(paths["/jobs"]) == {"get", "post"}
    assert set(paths["/jobs/{job_id}"]) == {"get", "delete"}
    assert "/jobs/{job_id}/result" in paths
    assert "/jobs/{job_id}/plots/{name}.png" in paths
    typed = paths["/jobs/{job_id}/result"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert typed == {"$ref": "#/components/schemas/PlanCompleted"}


def test_the_result_is_the_summary_with_its_stored_parts_and_a_lost_part_is_a_problem(tmp_path: Path) -> None:
    eng = engine(tmp_path)
    store, artifacts = JobStore(eng), ArtifactStore(eng)
    kind = kind_for(JobTopics.of("planning"))
    app = create_app(title="jobs")
    app.state.job_api = JobApi(kind, store, None, artifacts)  # type: ignore[arg-type]
    app.include_router(job_router(kind))
    client = TestClient(app)
    whole = {
        "job_id": "j1",
        "spec_hash": "h",
        "optimizer": "iboa",
        "encoding": "spherical",
        "best_cost": 1.5,
        "cost": {"total": 1.5, "length": 1.0, "threat": 0.0, "altitude": 0.5, "smoothness": 0.0},
        "feasible": True,
        "waypoints": [[1.0, 2.0, 3.0]],
        "path": [[0.0, 0.0, 1.0], [1.0, 2.0, 3.0]],
        "fitness_curve": [3.0, 2.0, 1.5],
        "evaluations": 30,
        "runtime_s": 0.1,
        "comparison": [
            {
                "optimizer": "pso",
                "encoding": "spherical",
                "best_cost": 2.0,
                "feasible": True,
                "min_clearance": 3.0,
                "evaluations": 30,
                "runtime_s": 0.1,
                "fitness_curve": [4.0, 2.0],
            }
        ],
    }
    summary, parts = split_plan_result(whole)
    ref = artifacts.put_parts("j1", parts)
    for job_id in ("j1", "j2"):
        store.create(job_id, "planning", {})
        store.complete(job_id, {**summary, "job_id": job_id, "result_ref": ref.model_dump(mode="json")})
    answer = client.get("/jobs/j1/result").json()
    assert {k: answer[k] for k in whole} == whole
    assert answer["result_ref"]["sha256"] == ref.sha256
    assert client.get("/jobs/j1/plots/result-parts.json.png").status_code == 404
    lost = client.get("/jobs/j2/result")
    assert lost.status_code == 500
    assert lost.headers["content-type"].startswith("application/problem+json")
    assert "result-parts.json is missing" in lost.json()["detail"]
    artifacts.put("j2", ref.name, b'{"path": []}', ref.content_type)
    assert "does not match its reference" in client.get("/jobs/j2/result").json()["detail"]
