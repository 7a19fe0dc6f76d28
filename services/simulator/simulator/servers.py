"""Control of the servers for the broker and Redis faults: the kernel's native stack, or Compose's containers.

The tooling's native `Stack` is itself a ServerControl; tests hand the simulator their own servers object (anything
with stop_kafka/start_kafka/stop_redis/start_redis); `make demo` and the API find the stack `make up` started,
natively (through the tooling's `quartet.servers` entry points, on a host) or under Compose.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from quartet_shared.net import host_port
from quartet_shared.toxiproxy import BOTH_WAYS, Stream, ToxiproxyClient

from simulator.cluster import ClusterControl
from simulator.workers import (
    COMPOSE_PROJECT_LABEL,
    COMPOSE_SERVICE_LABEL,
    COMPOSE_WORKERS,
    ComposeWorkers,
    HostWorkers,
    WorkerControl,
)

if TYPE_CHECKING:
    from simulator.settings import SimulatorSettings

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# The most nodes a Compose cluster is looked for under (kafka-1 ... kafka-5, as QUARTET_KAFKA_NODES allows natively).
MAX_COMPOSE_NODES = 5
# Where the `cluster` profile's Toxiproxy serves its API in its container.
TOXIPROXY_API_PORT = 8474


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


@dataclass
class ComposeCluster:
    """The `cluster` profile's Kafka nodes (services kafka-1, kafka-2, ...) through the Docker API, a ClusterControl.

    A partition disconnects the container from its networks (from the clients, the other nodes, the controllers
    and the proxy alike) and connects it again under the same aliases; a worker partition does so to the first
    worker container of each kind in `cut_kinds`. Toxics (latency, bandwidth, timeouts, ...) go on the profile's
    Toxiproxy, which stands in front of each node as natively: on both of the node's proxies, `kafka-N` (the
    containers' listener) and `kafka-N-host` (the host's), so every client sees them.
    """

    client: Any
    project: str | None = None
    cut_kinds: tuple[str, ...] = ()
    health_timeout_s: float = 180.0
    poll_s: float = 2.0
    worker_bootstrap: str | None = None
    # The proxy server's API; None: where the engine publishes the toxiproxy container's port 8474.
    toxiproxy_url: str | None = None
    # Where a port the engine publishes on every interface (0.0.0.0, ::) is reached: the loopback, not the wildcard.
    published_host: str = "127.0.0.1"
    _networks: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # The client of that API (made on first use; a test hands its own).
    proxies: ToxiproxyClient | None = None

    def _containers(self, service: str) -> list[Any]:
        labels = [f"{COMPOSE_SERVICE_LABEL}={service}"]
        if self.project:
            labels.append(f"{COMPOSE_PROJECT_LABEL}={self.project}")
        return sorted(self.client.containers.list(all=True, filters={"label": labels}), key=lambda c: c.name)

    def _node(self, node_id: int) -> Any:
        found = self._containers(f"kafka-{node_id}")
        if not found:
            raise RuntimeError(f"no kafka-{node_id} container in the Compose project")
        return found[0]

    def node_ids(self) -> list[int]:
        """The ids of the kafka-N containers of the project."""
        return [n for n in range(1, MAX_COMPOSE_NODES + 1) if self._containers(f"kafka-{n}")]

    def kill(self, node_id: int) -> None:
        """SIGKILL the node's container."""
        self._node(node_id).kill(signal="SIGKILL")

    def stop(self, node_id: int) -> None:
        """Stop the node's container cleanly (SIGTERM, SIGKILL after 30 s)."""
        self._node(node_id).stop(timeout=30)

    def restart(self, node_id: int) -> None:
        """Start the node's container (unless its restart policy already did) and wait until it is healthy."""
        container = self._node(node_id)
        container.reload()
        if container.status != "running":
            container.start()
        deadline = time.monotonic() + self.health_timeout_s
        while _health(container) != "healthy":
            if time.monotonic() > deadline:
                raise RuntimeError(f"kafka-{node_id} not healthy {self.health_timeout_s:g} s after its start")
            time.sleep(self.poll_s)
            container.reload()

    def isolate(self, node_id: int) -> None:
        """Disconnect the node's container from every network it is on."""
        self._disconnect(self._node(node_id))

    def rejoin(self, node_id: int) -> None:
        """Connect it again, under the aliases it had."""
        self._reconnect(self._node(node_id))

    def add_toxic(
        self, node_id: int, name: str, kind: str, attributes: dict[str, Any], streams: Iterable[Stream] = BOTH_WAYS
    ) -> None:
        """A toxic on both of a node's proxies, on each of `streams` (named `name-stream`, as natively)."""
        for proxy in self._node_proxies(node_id):
            for stream in streams:
                self._toxiproxy().add_toxic(proxy, f"{name}-{stream}", kind, attributes, stream)

    def remove_toxic(self, node_id: int, name: str, streams: Iterable[Stream] = BOTH_WAYS) -> None:
        """Remove what `add_toxic` added under `name`, going on past any already gone."""
        for proxy in self._node_proxies(node_id):
            for stream in streams:
                # A restarted proxy server has lost its toxics and a half-done add left some out: the undo goes on.
                self._toxiproxy().remove_toxic(proxy, f"{name}-{stream}", missing_ok=True)

    def _node_proxies(self, node_id: int) -> tuple[str, str]:
        self._node(node_id)  # a node the project does not have has no proxies either
        return f"kafka-{node_id}", f"kafka-{node_id}-host"

    def _toxiproxy(self) -> ToxiproxyClient:
        if self.proxies is None:
            self.proxies = ToxiproxyClient(self.toxiproxy_api())
        return self.proxies

    def toxiproxy_api(self) -> str:
        """The proxy server's API: `toxiproxy_url`, else where the engine publishes the container's port 8474."""
        if self.toxiproxy_url:
            return self.toxiproxy_url
        found = self._containers("toxiproxy")
        if not found:
            raise RuntimeError("no toxiproxy container in the Compose project (the `cluster` profile starts one)")
        bindings = found[0].attrs["NetworkSettings"]["Ports"].get(f"{TOXIPROXY_API_PORT}/tcp") or []
        if not bindings:
            raise RuntimeError("the toxiproxy container publishes no API port: set SIMULATOR_TOXIPROXY_URL")
        return f"http://{host_port(reached_on(bindings[0]['HostIp'], self.published_host), bindings[0]['HostPort'])}"

    def cut_side(self) -> None:
        """Disconnect the first worker container of each kind in `cut_kinds` from every network."""
        for container in self._workers():
            self._disconnect(container)

    def heal_side(self) -> None:
        """Connect the workers `cut_side` cut off again."""
        for container in self._workers():
            self._reconnect(container)

    def _workers(self) -> list[Any]:
        firsts = [self._containers(COMPOSE_WORKERS[kind])[:1] for kind in self.cut_kinds]
        return [c for first in firsts for c in first]

    def _disconnect(self, container: Any) -> None:
        container.reload()
        networks = container.attrs["NetworkSettings"]["Networks"]
        self._networks[container.name] = {name: list(net.get("Aliases") or []) for name, net in networks.items()}
        for name in networks:
            self.client.networks.get(name).disconnect(container)

    def _reconnect(self, container: Any) -> None:
        for name, aliases in self._networks.pop(container.name, {}).items():
            self.client.networks.get(name).connect(container, aliases=aliases)


def reached_on(published_on: str, instead: str) -> str:
    """Where a port the engine published on `published_on` is reached: on `instead` for a wildcard (or none)."""
    return instead if not published_on or ipaddress.ip_address(published_on).is_unspecified else published_on


def _health(container: Any) -> str | None:
    """A container's health check status (None without one)."""
    health = container.attrs.get("State", {}).get("Health")
    return str(health["Status"]) if health else None


def docker_client() -> Any:
    """A Docker API client from the environment (DOCKER_HOST or the local socket)."""
    import docker

    return docker.from_env()


def host_hook(name: str) -> Callable[..., Any] | None:
    """A hook of the host's tooling (`quartet.servers` entry points), absent where only the runtime is installed."""
    found = entry_points(group="quartet.servers", name=name)
    return next(iter(found)).load() if found else None


def compose_running() -> bool:
    """True when `make up` started the servers with Compose on this host."""
    hook = host_hook("compose_running")
    return bool(hook()) if hook else False


@dataclass(frozen=True)
class Controls:
    """The servers, workers and Kafka cluster the simulator controls (None where it has no control of them)."""

    servers: ServerControl | None = None
    workers: WorkerControl | None = None
    cluster: ClusterControl | None = None
    compose: bool = False


def detect_controls(
    settings: SimulatorSettings, *, cluster: bool = True, cut_kinds: tuple[str, ...] = (), given: Controls | None = None
) -> Controls:
    """The controls of the environment `settings` describe (Compose's containers or `make up`'s native stack).

    The pieces `given` are kept as they are. The cluster is looked for only when `cluster` is true (a run asks
    when its scenario has cluster faults, the console always); under Compose a worker partition cuts off the
    kinds in `cut_kinds`. A piece that cannot be had (no Docker API, a failing hook) is None with a warning: the
    chaos panel then says what it cannot do, and a run's preflight names what its faults miss.
    """
    compose = settings.infra == "compose" or (settings.infra == "auto" and compose_running())
    project = settings.compose_project
    given = given or Controls()
    servers = given.servers
    if servers is None and settings.infra != "none":
        servers = _attempt("the servers", lambda: _server_control(settings.kafka_bootstrap_servers, compose, project))
    workers = given.workers
    if workers is None:
        workers = _attempt("the workers", lambda: _worker_control(settings, compose))
    found = given.cluster
    if found is None and cluster and (compose or settings.cluster_state is not None):
        found = _attempt("the Kafka cluster", lambda: _cluster_control(settings, compose, cut_kinds))
    return Controls(servers=servers, workers=workers, cluster=found, compose=compose)


def _attempt(what: str, find: Callable[[], _T | None]) -> _T | None:
    try:
        return find()
    except Exception as exc:  # the Docker API may be absent or a hook fail; the piece is then missing, not the rest
        log.warning("no control of %s: %s", what, exc)
        return None


def _server_control(kafka_bootstrap: str, compose: bool, project: str | None) -> ServerControl | None:
    if compose:
        return ComposeServerControl(docker_client(), project)
    native = host_hook("native_control")
    control: ServerControl | None = native(kafka_bootstrap) if native else None
    return control


def _worker_control(settings: SimulatorSettings, compose: bool) -> WorkerControl | None:
    if compose:
        return ComposeWorkers(docker_client(), settings.compose_project)
    if settings.infra not in ("auto", "native"):
        return None
    # `make up`'s workers, each under a keeper, when the simulator's broker is theirs.
    native = host_hook("native_workers")
    host = native(settings.kafka_bootstrap_servers) if native else None
    return HostWorkers(host) if host is not None else None


def _cluster_control(settings: SimulatorSettings, compose: bool, cut_kinds: tuple[str, ...]) -> ClusterControl | None:
    if compose:
        return ComposeCluster(
            docker_client(),
            settings.compose_project,
            cut_kinds=cut_kinds,
            toxiproxy_url=settings.toxiproxy_url,
            published_host=settings.compose_host,
        )
    # The native cluster `make up` described under the state directory (nodes and fault proxies).
    native = host_hook("native_cluster")
    control: ClusterControl | None = native(str(settings.cluster_state)) if native else None
    return control
