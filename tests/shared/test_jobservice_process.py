"""Hostile requests against both job services as real processes on PostgreSQL: each is a 4xx problem at once,
never a 500 and never a body read whole."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from quartet_shared.settings import KernelSettings

from tests.support.auth import ADMIN
from tests.support.jobs import ServiceProcess, service_process

pytestmark = pytest.mark.integration

PLAN: dict[str, Any] = {
    "scenario": {
        "terrain": {"kind": "gaussian"},
        "bounds": {"x": [1, 100], "y": [1, 100]},
        "start": [5, 5, 50],
        "goal": [90, 90, 50],
    },
    "optimizer": {"population": 10, "iterations": 5},
}
TRAINING: dict[str, Any] = {
    "model": {"kind": "linear"},
    "optimizer": {"kind": "closed_form"},
    "data": {"kind": "inline", "rows": [[1, 2], [2, 4], [3, 6]], "columns": ["x", "y"]},
}


@dataclass(frozen=True)
class Service:
    """One job service: its console script, settings prefix, a valid spec and where a NUL can hide in it."""

    script: str
    prefix: str
    spec: dict[str, Any]
    text_field: str


SERVICES = [
    Service("training-worker", "TRAINING_", TRAINING, "data.columns.0"),
    Service("path-planner", "PLANNER_", PLAN, "scenario.name"),
]


def with_text(spec: dict[str, Any], field: str, value: str) -> dict[str, Any]:
    """A copy of `spec` with the string at dotted `field` replaced."""
    changed = copy.deepcopy(spec)
    node: Any = changed
    *parents, last = field.split(".")
    for part in parents:
        node = node[int(part) if part.isdigit() else part]
    node[int(last) if last.isdigit() else last] = value
    return changed


@pytest.fixture(params=SERVICES, ids=[s.script for s in SERVICES])
def running(
    request: pytest.FixtureRequest, settings: KernelSettings, unique: str, tmp_path: Path
) -> Iterator[tuple[Service, ServiceProcess]]:
    """The service as a real `all` process on the test PostgreSQL (which cannot store a NUL)."""
    service: Service = request.param
    env = {"DATABASE_URL": str(settings.database_url)}
    with service_process(service.script, service.prefix, settings, unique, tmp_path / "service", env) as proc:
        yield service, proc


def assert_problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    """The answer is a problem body of `status`; returns it."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    return body


def test_nul_in_a_path_or_a_spec_is_a_4xx_problem(running: tuple[Service, ServiceProcess]) -> None:
    service, proc = running
    with httpx.Client(base_url=proc.base, headers=ADMIN, timeout=10) as http:
        assert "NUL" in assert_problem(http.get("/jobs/%00"), 400)["detail"]
        assert "NUL" in assert_problem(http.delete("/jobs/%00"), 400)["detail"]
        assert_problem(http.get("/jobs?status=%00"), 400)
        spec = with_text(service.spec, service.text_field, "2\u0000")
        refused = assert_problem(http.post("/jobs", json=spec), 422)
        assert refused["errors"][0]["field"] == service.text_field


def test_a_50_mb_body_is_413_at_once_and_a_streamed_one_too(running: tuple[Service, ServiceProcess]) -> None:
    _service, proc = running
    huge = b'{"pad": "' + b"x" * (50 * 1024 * 1024) + b'"}'
    with httpx.Client(base_url=proc.base, headers=ADMIN, timeout=30) as http:
        started = time.monotonic()
        declared = http.post("/jobs", content=huge, headers={"Content-Type": "application/json"})
        assert "over the limit of 1,048,576 bytes" in assert_problem(declared, 413)["detail"]
        assert time.monotonic() - started < 10

        def chunks() -> Iterator[bytes]:
            for start in range(0, 4 * 1024 * 1024, 64 * 1024):
                yield huge[start : start + 64 * 1024]

        try:
            streamed = http.post("/jobs", content=chunks(), headers={"Content-Type": "application/json"})
        except httpx.WriteError:
            pass  # the server may close its side once it has answered; the next request shows it still serves
        else:
            assert_problem(streamed, 413)
        assert http.get("/healthz").status_code == 200


def test_an_idempotency_key_names_one_body(running: tuple[Service, ServiceProcess], unique: str) -> None:
    service, proc = running
    # Both services' tests share one database: a key of their own keeps their jobs apart.
    key = {"Idempotency-Key": f"{service.script}-{unique}"}
    with httpx.Client(base_url=proc.base, headers=ADMIN, timeout=30) as http:
        first = http.post("/jobs", json=service.spec, headers=key)
        assert first.status_code == 202, first.text
        again = http.post("/jobs", json=service.spec, headers=key)
        assert (again.status_code, again.json()["id"]) == (202, first.json()["id"])
        other = with_text(service.spec, service.text_field, "another")
        mismatch = assert_problem(http.post("/jobs", json=other, headers=key), 422)
        assert "different request body" in mismatch["detail"]


def test_uploads_refuse_nul_huge_cells_and_one_row(settings: KernelSettings, unique: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": str(settings.database_url)}
    with (
        service_process("training-worker", "TRAINING_", settings, unique, tmp_path / "service", env) as proc,
        httpx.Client(base_url=proc.base, headers=ADMIN, timeout=30) as http,
    ):
        csv = {"Content-Type": "text/csv"}
        assert_problem(http.get("/datasets/%00"), 400)
        assert_problem(http.post("/datasets?name=%00../../x", content=b"a,y\n1,2\n3,4\n5,6\n", headers=csv), 400)
        assert_problem(http.post("/datasets?name=../../x", content=b"a,y\n1,2\n3,4\n5,6\n", headers=csv), 422)
        nul = assert_problem(http.post("/datasets", content=b"a,y\n1,2\n3,2\x00\n5,1\n", headers=csv), 422)
        assert "NUL" in nul["detail"]
        cell = b"a,y\n1,2\n3," + b"7" * (5 * 1024 * 1024) + b"\n"
        assert "field limit" in assert_problem(http.post("/datasets", content=cell, headers=csv), 422)["detail"]
        one = assert_problem(http.post("/datasets", content=b"a,b,y\n1,2,3\n", headers=csv), 422)
        assert "at least 3" in one["detail"]
        assert http.post("/datasets", content=b"a,y\n1,2\n3,4\n5,6\n", headers=csv).status_code in (200, 201)
