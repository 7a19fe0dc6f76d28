"""The app factory: health, readiness, metrics and problem+json bodies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import APIRouter, Request
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator, ValidationError
from pydantic import BaseModel, Field
from quartet_shared.http import Problem, allow_larger_bodies, create_app


class Thing(BaseModel):
    name: str = Field(min_length=1)
    size: int = Field(gt=0)


class Nested(BaseModel):
    things: list[Thing]


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


def test_the_openapi_document_gives_metrics_the_content_type_they_are_served_as() -> None:
    client = _app(ready=True)
    served = client.get("/metrics").headers["content-type"]
    declared = client.get("/openapi.json").json()["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(declared) == ["text/plain"]
    assert served.split(";")[0] == "text/plain"


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


def test_a_nul_in_the_path_or_query_is_a_400_problem_naming_where() -> None:
    client = _app(ready=True)
    for url, where in (("/things/%00", "path"), ("/healthz?name=%00../../x", "query")):
        r = client.get(url)
        assert r.status_code == 400, url
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"] == [{"field": where, "message": r.json()["detail"]}]
        assert "NUL" in r.json()["detail"]


def test_a_body_over_the_limit_is_413_before_parsing_declared_or_streamed() -> None:
    app = create_app(title="t", max_request_bytes=1024)
    parsed: list[Thing] = []

    @app.post("/things")
    def make(thing: Thing) -> Thing:
        parsed.append(thing)
        return thing

    client = TestClient(app)
    body = b'{"name": "' + b"x" * 2048 + b'", "size": 1}'
    declared = client.post("/things", content=body, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert declared.headers["content-type"] == "application/problem+json"
    assert declared.json()["detail"] == "the request body is over the limit of 1,024 bytes"

    def chunks() -> Iterator[bytes]:
        # No Content-Length: the limit must hold while the body streams in.
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    streamed = client.post("/things", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert streamed.json()["status"] == 413
    assert parsed == []
    assert client.post("/things", json={"name": "small", "size": 1}).status_code == 200


def test_a_json_syntax_error_is_400_naming_line_and_column() -> None:
    r = _app(ready=True).post(
        "/things", content=b'{\n  "name": "a",\n  "size" 1\n}', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    body = r.json()
    assert (body["line"], body["column"]) == (3, 10)
    assert "line 3, column 10" in body["detail"]
    assert r.headers["content-type"] == "application/problem+json"


def test_a_body_that_is_not_json_is_415() -> None:
    r = _app(ready=True).post("/things", content=b"name=a", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert "application/json" in r.json()["detail"] and "text/plain" in r.json()["detail"]


def test_a_wrong_method_is_a_405_problem_with_allow() -> None:
    r = _app(ready=True).delete("/things")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert r.headers["content-type"] == "application/problem+json"


def test_allow_names_every_method_of_the_path_not_only_the_first_routes() -> None:
    # FastAPI makes one route per method; Starlette's 405 named only the first route's methods (GET /jobs and
    # POST /jobs gave `Allow: POST` to a PUT), where RFC 9110 asks for every method the resource supports.
    # The services include their routes through routers, which is what this app does too.
    app = create_app(title="t")
    router = APIRouter()

    @router.post("/items")
    def add() -> None:
        """Add."""

    @router.get("/items")
    def listing() -> None:
        """List."""

    @router.delete("/items/{item}")
    def remove(item: str) -> None:
        """Remove."""

    @router.get("/items/{item}")
    def read(item: str) -> None:
        """Read."""

    app.include_router(router)
    client = TestClient(app)
    assert client.put("/items").headers["allow"] == "GET, POST"
    answer = client.patch("/items/x")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "DELETE, GET"


def test_openapi_declares_problem_bodies_on_every_operation_even_of_later_routers() -> None:
    app = create_app(title="t")
    router = APIRouter()

    @router.get("/later/{item}")
    def later(item: str) -> str:
        return item

    app.include_router(router)
    schema = TestClient(app).get("/openapi.json").json()
    assert "ProblemDetails" in schema["components"]["schemas"]
    operations = [op for item in schema["paths"].values() for op in item.values()]
    assert len(operations) == 4
    for op in operations:
        for status in ("400", "401", "403", "404", "409", "413", "415", "422", "429"):
            assert list(op["responses"][status]["content"]) == ["application/problem+json"]


def test_a_path_given_a_larger_limit_takes_bodies_the_app_would_refuse() -> None:
    app = create_app(title="t", max_request_bytes=1024)

    @app.post("/upload")
    async def upload(request: Request) -> int:
        return len(await request.body())

    allow_larger_bodies(app, "/upload", 4096)
    client = TestClient(app)
    assert client.post("/upload", content=b"x" * 3000).json() == 3000
    assert client.post("/upload", content=b"x" * 5000).status_code == 413


def test_a_nul_in_any_text_of_a_json_body_is_a_422_naming_the_field() -> None:
    app = create_app(title="t")
    router = APIRouter()

    @router.post("/nested")
    def nested(body: Nested) -> int:
        return len(body.things)

    app.include_router(router)
    client = TestClient(app)
    r = client.post("/nested", json={"things": [{"name": "ok", "size": 1}, {"name": "2\u0000", "size": 1}]})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["field"] == "things.1.name"
    assert "NUL" in r.json()["errors"][0]["message"]
    # A backslash followed by "u0000" is text, not a NUL.
    escaped = client.post("/nested", json={"things": [{"name": "\\u0000", "size": 1}]})
    assert escaped.json() == 1, escaped.text


def test_field_problems_with_more_than_field_and_message_conform_to_the_declared_problem_body() -> None:
    app = create_app(title="t")

    @app.post("/scenario")
    def scenario() -> None:
        where = {"file": "<request>", "line": None, "column": None}
        raise Problem(422, "Invalid scenario", "bad", errors=[{"field": "mix", "message": "missing", **where}])

    client = TestClient(app)
    body = client.post("/scenario").json()
    document = client.get("/openapi.json").json()
    declared = document["paths"]["/scenario"]["post"]["responses"]["422"]["content"]["application/problem+json"]
    schema = {**declared["schema"], "components": document["components"]}
    Draft202012Validator(schema).validate(body)
    with pytest.raises(ValidationError):  # the document still holds each field problem to a field and a message
        Draft202012Validator(schema).validate({**body, "errors": [{"line": 3}]})
