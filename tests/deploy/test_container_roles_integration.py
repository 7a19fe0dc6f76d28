"""Every long-running container of docker-compose.yml, run as its image would run it, without Docker.

Each container's command (`<service> api|worker|relay`) starts as a process with the container's environment,
pointed at the session's real Kafka, Redis and PostgreSQL (a database of its own, owned by its service's role,
which it connects as), its own topic prefix and a free port in place of the contract's. Each must answer the
image's HEALTHCHECK (`GET /healthz` on its port) and `/readyz`, serve `/metrics`, and on SIGTERM exit 0 within
the contract's 30 s: a worker or relay container is probed and scraped like an API container.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from quartet_shared.net import free_port

from tests.deploy.compose_file import app_containers, container_env, program_of
from tests.deploy.conftest import BY_PROGRAM, REPO, SERVICE_ROLE, settings_class
from tests.support.servers import Servers, role_database

pytestmark = pytest.mark.integration

# The long-running containers (the one-shot steps have their own checks; the simulator drives the others).
CONTAINERS = sorted(
    name for name, svc in app_containers().items() if svc.get("restart") != "no" and program_of(svc) != "simulator"
)


@pytest.fixture(scope="module")
def databases(servers: Servers) -> dict[str, dict[str, str]]:
    """A fresh database per service, owned by its service's role: its DATABASE_URL and PGPASSWORD, as Compose's."""
    suffix = os.urandom(4).hex()
    return {
        program: role_database(servers, SERVICE_ROLE[program], f"{program.replace('-', '_')}_{suffix}")
        for program in BY_PROGRAM
        if program != "simulator"
    }


Started = dict[str, tuple[subprocess.Popen[bytes], int, Path]]


def _start_container(
    name: str, servers: Servers, databases: dict[str, dict[str, str]], unique: str, tmp_path: Path
) -> tuple[subprocess.Popen[bytes], int, Path]:
    """Run one container's command on the test machine, on a free port, logging to a file."""
    svc = app_containers()[name]
    program = program_of(svc)
    prefix = str(settings_class(BY_PROGRAM[program].package).model_config["env_prefix"])
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "REDIS_", "DATABASE_", "PG"))},
        **container_env(svc),
        "KAFKA_BOOTSTRAP_SERVERS": servers.kafka_bootstrap,
        "REDIS_URL": servers.redis_url,
        **databases[program],
        f"{prefix}PORT": str(port),
        # The file's 0.0.0.0 is for inside a container; on the test machine, loopback only.
        f"{prefix}HOST": "127.0.0.1",
        f"{prefix}TOPIC_PREFIX": f"{unique}.",
        f"{prefix}TOPIC_PARTITIONS": "2",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / f"{name}.log"
    proc = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / program), *svc["command"]],
        cwd=tmp_path,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return proc, port, log


def _wait_until_ready(procs: Started) -> None:
    """Every process answers /readyz with 200, none having exited, within 300 s."""
    waiting = dict(procs)
    # Generous: seven Python processes importing numpy, scipy and scikit-learn at once on a busy CI machine.
    deadline = time.monotonic() + 300
    while waiting and time.monotonic() < deadline:
        for name, (proc, port, log) in list(waiting.items()):
            assert proc.poll() is None, f"{name} exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                ready = False
            if ready:
                del waiting[name]
        time.sleep(0.5)
    assert not waiting, "not ready in 300 s: " + ", ".join(
        f"{n}:\n{log.read_text()[-2000:]}" for n, (_, _, log) in waiting.items()
    )


def _stop_all_and_check_clean_exit(procs: Started) -> None:
    """SIGTERM to all at once; each exits 0 within 30 s."""
    for proc, _, _ in procs.values():
        proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    for name, (proc, _, log) in procs.items():
        code = proc.wait(max(1.0, sent + 35 - time.monotonic()))
        assert code == 0, f"{name} exited {code} on SIGTERM:\n{log.read_text()[-3000:]}"
        assert time.monotonic() - sent < 31, f"{name} took more than 30 s to stop"


def test_every_container_command_serves_its_ops_endpoints_and_stops_cleanly(
    servers: Servers, databases: dict[str, dict[str, str]], unique: str, tmp_path: Path
) -> None:
    """All long-running containers at once, as Compose runs them side by side."""
    procs: Started = {}
    try:
        for name in CONTAINERS:
            procs[name] = _start_container(name, servers, databases, unique, tmp_path)
        _wait_until_ready(procs)
        for name, (_, port, _) in procs.items():
            base = f"http://127.0.0.1:{port}"
            assert httpx.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}, name
            metrics = httpx.get(f"{base}/metrics", timeout=5)
            assert metrics.status_code == 200 and "quartet_" in metrics.text, name
        _stop_all_and_check_clean_exit(procs)
    finally:
        for proc, _, _ in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
