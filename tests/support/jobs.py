"""Helpers for tests of job services (training-worker, path-planner) through their HTTP API and topics."""

from __future__ import annotations

import socket
from typing import Any

from fastapi.testclient import TestClient
from quartet_shared.jobservice import JobTopics
from quartet_shared.settings import KernelSettings

from tests.support.effects import read_all, wait_until


def wait_status(client: TestClient, job_id: str, status: str, timeout_s: float = 90) -> dict[str, Any]:
    """Poll GET /jobs/{id} until it reports `status`; the last body seen."""
    seen: dict[str, Any] = {}

    def reached() -> bool:
        seen.update(client.get(f"/jobs/{job_id}").json())
        return seen.get("status") == status

    wait_until(reached, timeout_s, f"job {job_id} to be {status} (last: {seen})")
    return seen


def run_to_success(client: TestClient, spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Submit a job that must be accepted, wait until it has succeeded, and return its id and result."""
    answer = client.post("/jobs", json=spec)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "queued"
    assert set(body["links"]) >= {"self", "cancel"}
    job = wait_status(client, body["id"], "succeeded")
    assert job["progress"] == 1.0
    assert job["cached"] is False
    result: dict[str, Any] = client.get(f"/jobs/{body['id']}/result").json()
    assert result["job_id"] == body["id"]
    return str(body["id"]), result


def assert_png(client: TestClient, job_id: str, name: str) -> None:
    """The job's figure `name` is served as a PNG."""
    png = client.get(f"/jobs/{job_id}/plots/{name}.png")
    assert png.status_code == 200, png.text
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")


def results_for(settings: KernelSettings, topics: JobTopics, job_id: str) -> list[str]:
    """The ce_types of the committed result events about `job_id`."""
    events = read_all(settings, [topics.results], idle_ms=3000)
    return [e.type for e in events if e.subject == job_id]


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
