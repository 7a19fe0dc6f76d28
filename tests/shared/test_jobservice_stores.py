"""The job service's durable stores (artifacts and results by spec hash) and its router, without servers."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from quartet_shared.artifacts import ArtifactStore, ResultStore
from quartet_shared.db import make_engine
from quartet_shared.http import create_app
from quartet_shared.jobservice import JobTopics, job_router
from sqlalchemy import Engine

from tests.shared.test_jobservice import kind_for


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
