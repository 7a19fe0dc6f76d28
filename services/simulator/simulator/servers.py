"""Control of the servers for the broker and Redis faults: the kernel's native stack, or Compose's containers.

The kernel's native `Stack` is itself a ServerControl; tests hand the simulator their own servers object (anything
with stop_kafka/start_kafka/stop_redis/start_redis); `make demo` and the API find the stack `make up` started,
natively or under Compose.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from quartet_shared.infra import STATE_DIR, Stack, docker_available

from simulator.workers import COMPOSE_PROJECT_LABEL, COMPOSE_SERVICE_LABEL


class ServerControl(Protocol):
    """Stop and start the broker and Redis (start waits until the server serves again)."""

    def stop_kafka(self) -> None: ...
    def start_kafka(self) -> None: ...
    def stop_redis(self) -> None: ...
    def start_redis(self) -> None: ...


@dataclass
class ComposeServerControl:
    """The kafka and redis containers of a Compose project, through the Docker API."""

    client: Any
    project: str | None = None
    settle_s: float = 5.0

    def _container(self, service: str) -> Any:
        labels = [f"{COMPOSE_SERVICE_LABEL}={service}"]
        if self.project:
            labels.append(f"{COMPOSE_PROJECT_LABEL}={self.project}")
        found = self.client.containers.list(all=True, filters={"label": labels})
        if not found:
            raise RuntimeError(f"no {service} container in the Compose project")
        return found[0]

    def _restart(self, service: str) -> None:
        container = self._container(service)
        container.start()
        # A started container keeps its port bindings; give the server a moment to listen again.
        time.sleep(self.settle_s)

    def stop_kafka(self) -> None:
        """Stop the kafka container."""
        self._container("kafka").stop(timeout=30)

    def start_kafka(self) -> None:
        """Start the kafka container again."""
        self._restart("kafka")

    def stop_redis(self) -> None:
        """Stop the redis container."""
        self._container("redis").stop(timeout=10)

    def start_redis(self) -> None:
        """Start the redis container again."""
        self._restart("redis")


def docker_client() -> Any:
    """A Docker API client from the environment (DOCKER_HOST or the local socket)."""
    import docker

    return docker.from_env()


def compose_running() -> bool:
    """True when `make up` started the servers with Compose (its marker file is present and Docker answers)."""
    return (STATE_DIR / "docker").exists() and docker_available()


def detect_server_control(kafka_bootstrap: str, mode: str, project: str | None) -> ServerControl | None:
    """The control for the running servers, or None when the simulator cannot reach them."""
    if mode == "none":
        return None
    if mode == "compose" or (mode == "auto" and compose_running()):
        return ComposeServerControl(docker_client(), project)
    stack = Stack.at(STATE_DIR, standard_ports=True)
    if stack.kafka.running() and kafka_bootstrap.split(",")[0].strip().endswith(f":{stack.kafka.port}"):
        return stack
    return None


@contextlib.contextmanager
def private_stack(prefix: str = "quartet-sim-") -> Iterator[Stack]:
    """Native Kafka, Redis and PostgreSQL on free ports under a fresh temporary directory, removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    # The postgres user must be able to reach its data directory under this one.
    workdir.chmod(0o755)
    stack = Stack.at(workdir, standard_ports=False)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
