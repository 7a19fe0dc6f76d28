"""Control of the servers for the broker and Redis faults: the kernel's native stack, or Compose's containers.

The tooling's native `Stack` is itself a ServerControl; tests hand the simulator their own servers object (anything
with stop_kafka/start_kafka/stop_redis/start_redis); `make demo` and the API find the stack `make up` started,
natively (through the tooling's `quartet.servers` entry points, on a host) or under Compose.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Protocol

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


def _host_hook(name: str) -> Callable[..., Any] | None:
    """A hook of the host's tooling (`quartet.servers` entry points), absent where only the runtime is installed."""
    found = entry_points(group="quartet.servers", name=name)
    return next(iter(found)).load() if found else None


def compose_running() -> bool:
    """True when `make up` started the servers with Compose on this host."""
    hook = _host_hook("compose_running")
    return bool(hook()) if hook else False


def detect_server_control(kafka_bootstrap: str, mode: str, project: str | None) -> ServerControl | None:
    """The control for the running servers, or None when the simulator cannot reach them."""
    if mode == "none":
        return None
    if mode == "compose" or (mode == "auto" and compose_running()):
        return ComposeServerControl(docker_client(), project)
    native = _host_hook("native_control")
    control: ServerControl | None = native(kafka_bootstrap) if native else None
    return control
