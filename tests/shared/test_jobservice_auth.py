"""The job API's credentials: submitting, cancelling and listing need a key with a scope; a job's own reads do not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from quartet_contracts.envelope import Envelope
from quartet_shared.artifacts import ArtifactStore
from quartet_shared.auth import ApiKeys
from quartet_shared.db import make_engine
from quartet_shared.http import create_app
from quartet_shared.jobs import JobStore
from quartet_shared.jobservice import JobApi, JobTopics, job_router

from tests.support.auth import ADMIN, API_KEYS_JSON, READER, WRITER
from tests.support.scripted_jobs import kind_for, spec

ANONYMOUS = {"Authorization": ""}
BAD_KEY = {"Authorization": "Bearer a-key-nobody-configured"}


class Recording:
    """A producer that acknowledges every send and remembers it."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Envelope]] = []

    def send_confirmed(self, topic: str, envelope: Envelope, timeout_s: float | None = None) -> Any:
        self.sent.append((topic, envelope))


@pytest.fixture
def producer() -> Recording:
    return Recording()


@pytest.fixture
def client(tmp_path: Path, producer: Recording) -> TestClient:
    engine = make_engine(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    kind = kind_for(JobTopics.of("planning", "auth."))
    app = create_app(title="jobs", api_keys=ApiKeys.parse(API_KEYS_JSON))
    app.state.job_api = JobApi(kind, JobStore(engine), producer, ArtifactStore(engine))  # type: ignore[arg-type]
    app.include_router(job_router(kind))
    return TestClient(app)


def submit(client: TestClient, headers: dict[str, str]) -> Any:
    return client.post("/jobs", json=spec(), headers=headers)


@pytest.mark.parametrize("who", [ANONYMOUS, BAD_KEY], ids=["no-key", "unknown-key"])
def test_mutating_routes_and_the_listing_are_401_without_a_valid_key(
    client: TestClient, producer: Recording, who: dict[str, str]
) -> None:
    job_id = submit(client, ADMIN).json()["id"]
    for method, path in (("POST", "/jobs"), ("DELETE", f"/jobs/{job_id}"), ("GET", "/jobs")):
        answer = client.request(method, path, json=spec(seed=9), headers=who)
        assert answer.status_code == 401, (method, answer.text)
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.headers["content-type"] == "application/problem+json"
    assert client.get(f"/jobs/{job_id}").json()["status"] == "queued"
    assert len(producer.sent) == 1


def test_a_key_without_the_scope_is_403(client: TestClient, producer: Recording) -> None:
    job_id = submit(client, ADMIN).json()["id"]
    for method, path, headers, scope in (
        ("POST", "/jobs", READER, "jobs:write"),
        ("DELETE", f"/jobs/{job_id}", READER, "jobs:write"),
        ("GET", "/jobs", WRITER, "jobs:read"),
    ):
        answer = client.request(method, path, json=spec(seed=9), headers=headers)
        assert answer.status_code == 403, (method, answer.text)
        assert answer.json()["required_scope"] == scope
    assert client.get(f"/jobs/{job_id}").json()["status"] == "queued"
    assert len(producer.sent) == 1


def test_authentication_comes_before_the_body_is_judged(client: TestClient) -> None:
    assert client.post("/jobs", json={"not": "a spec"}, headers=ANONYMOUS).status_code == 401


def test_the_right_scopes_submit_cancel_and_list(client: TestClient, producer: Recording) -> None:
    job_id = submit(client, WRITER).json()["id"]
    assert client.delete(f"/jobs/{job_id}", headers=WRITER).json()["status"] == "cancelled"
    assert [job["id"] for job in client.get("/jobs", headers=READER).json()] == [job_id]
    assert len(producer.sent) == 2


def test_a_jobs_own_reads_stay_open(client: TestClient) -> None:
    job_id = submit(client, ADMIN).json()["id"]
    assert client.get(f"/jobs/{job_id}", headers=ANONYMOUS).status_code == 200
    assert client.get(f"/jobs/{job_id}/result", headers=ANONYMOUS).status_code == 409
    assert client.get(f"/jobs/{job_id}/plots/chart.png", headers=ANONYMOUS).status_code == 409
    assert client.get("/jobs/no-such-job", headers=ANONYMOUS).status_code == 404


def test_openapi_marks_exactly_the_protected_operations(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    secured = {(path, method) for path, ops in paths.items() for method, op in ops.items() if op.get("security")}
    assert secured == {("/jobs", "post"), ("/jobs", "get"), ("/jobs/{job_id}", "delete")}
