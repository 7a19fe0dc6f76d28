"""Helpers for tests of job services (training-worker, path-planner) through their HTTP API and topics."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from quartet_contracts.envelope import Envelope, decode
from quartet_shared.jobservice import JobTopics
from quartet_shared.net import free_port
from quartet_shared.settings import KernelSettings
from quartet_tools.harness.processes import answers

from tests.support.auth import API_KEYS_JSON
from tests.support.effects import records_to_end, wait_until


def wait_status(client: TestClient, job_id: str, status: str, timeout_s: float = 90) -> dict[str, Any]:
    """Poll GET /jobs/{id} until it reports `status`; the last body seen."""
    seen: dict[str, Any] = {}

    def reached() -> bool:
        seen.update(client.get(f"/jobs/{job_id}").json())
        return seen.get("status") == status

    try:
        wait_until(reached, timeout_s, f"job {job_id} to be {status}")
    except AssertionError as exc:
        raise AssertionError(f"{exc} (last seen: {seen})") from None
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


def committed_events(settings: KernelSettings, topic: str, timeout_s: float = 60) -> list[Envelope]:
    """Every committed record on `topic` up to its last stable offset now, decoded (read_committed)."""
    return [decode(r.key, r.value, r.headers) for r in records_to_end(settings, [topic], timeout_s=timeout_s)]


def results_for(settings: KernelSettings, topics: JobTopics, job_id: str) -> list[str]:
    """The ce_types of the committed result events about `job_id`."""
    return [e.type for e in committed_events(settings, topics.results) if e.subject == job_id]


@dataclass(frozen=True)
class ServiceProcess:
    """A job service running as its console script: its process and base URL."""

    proc: subprocess.Popen[bytes]
    base: str


@contextmanager
def service_process(
    script: str,
    prefix: str,
    settings: KernelSettings,
    unique: str,
    workdir: Path,
    env: Mapping[str, str] | None = None,
    *,
    role: str = "all",
) -> Iterator[ServiceProcess]:
    """`script ROLE` on a free loopback port with the test servers and its own topics, in `workdir`, without
    DATABASE_URL unless `env` (added last) gives one (else it keeps a SQLite file there); healthy before the block
    runs, killed after it if still alive."""
    port = free_port()
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith((prefix, "QUARTET_")) and k != "DATABASE_URL"
    }
    environment.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "REDIS_URL": settings.redis_url,
            f"{prefix}HOST": "127.0.0.1",
            f"{prefix}PORT": str(port),
            f"{prefix}TOPIC_PREFIX": f"p{unique}.",
            f"{prefix}TOPIC_PARTITIONS": "3",
            f"{prefix}INSTANCE_ID": unique,
            "QUARTET_API_KEYS": API_KEYS_JSON,
            **(env or {}),
        }
    )
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{script}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / script), role],
            cwd=workdir,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"

        try:
            wait_until(answers(proc, f"{base}/healthz", log_path), 90, f"{script} to answer /healthz")
            yield ServiceProcess(proc, base)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
