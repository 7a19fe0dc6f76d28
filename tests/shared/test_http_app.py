"""The app factory: health, readiness, metrics and problem+json bodies."""

from __future__ import annotations

from fastapi.testclient import TestClient
from pydantic import BaseModel, Field
from quartet_shared.http import Problem, create_app


class Thing(BaseModel):
    name: str = Field(min_length=1)
    size: int = Field(gt=0)


def _app(ready: bool) -> TestClient:
    app = create_app(title="t", readiness={"kafka": lambda: True, "redis": lambda: ready})

    @app.post("/things")
    def make(thing: Thing) -> Thing:
        return thing

    @app.get("/conflict")
    def conflict() -> None:
        raise Problem(409, "Conflict", "already done", job_id="j1")

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    return TestClient(app, raise_server_exceptions=False)


def test_health_ready_and_metrics() -> None:
    client = _app(ready=True)
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["checks"] == {"kafka": "ok", "redis": "ok"}
    assert "quartet_messages_consumed_total" in client.get("/metrics").text


def test_not_ready_is_a_503_problem_naming_the_dependency() -> None:
    r = _app(ready=False).get("/readyz")
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["checks"]["redis"] == "unreachable"


def test_validation_errors_are_422_problems_naming_each_field() -> None:
    r = _app(ready=True).post("/things", json={"name": "", "size": -1})
    assert r.status_code == 422
    body = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in body["errors"]} == {"name", "size"}
    assert body["status"] == 422
    assert body["instance"] == "/things"


def test_problems_404s_and_crashes_all_answer_problem_json() -> None:
    client = _app(ready=True)
    r = client.get("/conflict")
    assert (r.status_code, r.json()["detail"], r.json()["job_id"]) == (409, "already done", "j1")
    assert client.get("/nowhere").headers["content-type"] == "application/problem+json"
    crash = client.get("/boom")
    assert crash.status_code == 500
    assert "secret" not in crash.text
