"""Before a run: is every part the scenario needs up? Each unreachable part is named, with where it was sought."""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping

import httpx
from quartet_shared.clients import kafka_admin
from quartet_shared.settings import KernelSettings

from simulator.cluster import ClusterControl
from simulator.domain.scenario import (
    BrokerRestartFault,
    KillWorkerFault,
    PartitionFault,
    PauseWorkerFault,
    RedisOutageFault,
    Scenario,
    SlowConsumerFault,
)
from simulator.settings import SimulatorSettings


class PreflightError(RuntimeError):
    """Parts of the system the run needs are unreachable; `problems` names each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("the system is not ready for this scenario:\n" + "\n".join(f"  - {p}" for p in problems))


def tcp_reachable(address: str, timeout_s: float = 3.0) -> str | None:
    """None if some `host:port` in the comma-separated `address` accepts a connection, else why not."""
    last = "no address given"
    for server in [s.strip() for s in address.split(",") if s.strip()]:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout=timeout_s):
                return None
        except (OSError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
    return last


def kafka_problem(settings: KernelSettings) -> str | None:
    """None if the broker answers a metadata request, else a sentence naming it."""
    bootstrap = settings.kafka_bootstrap_servers
    why = tcp_reachable(bootstrap)
    if why is None:
        try:
            admin = kafka_admin(settings, client_id="simulator-preflight", request_timeout_ms=8000)
            try:
                admin.list_topics()
            finally:
                admin.close()
            return None
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"
    return f"Kafka at {bootstrap} is unreachable ({why}); check KAFKA_BOOTSTRAP_SERVERS or run `make up`"


def redis_problem(url: str) -> str | None:
    """None if Redis answers PING."""
    import redis

    try:
        if redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3).ping():
            return None
        why = "no PONG"
    except Exception as exc:
        why = f"{type(exc).__name__}: {exc}"
    return f"Redis at {url} is unreachable ({why}); check REDIS_URL"


def database_problem(url: str, what: str) -> str | None:
    """None if the database accepts a connection and SELECT 1."""
    from quartet_shared.db import make_engine
    from sqlalchemy import text

    try:
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            engine.dispose()
        return None
    except Exception as exc:
        return f"{what} at {_redact(url)} is unreachable ({type(exc).__name__}: {str(exc).splitlines()[0]})"


def http_problem(base_url: str, what: str, timeout_s: float = 5.0) -> str | None:
    """None if `base_url`/healthz answers 200."""
    try:
        response = httpx.get(f"{base_url.rstrip('/')}/healthz", timeout=timeout_s)
    except httpx.HTTPError as exc:
        return f"{what} at {base_url} is unreachable ({type(exc).__name__}: {exc})"
    if response.status_code != 200:
        return f"{what} at {base_url} answered /healthz with {response.status_code}"
    return None


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{scheme}{sep}{user}@{host}"
    return url


def check(
    settings: SimulatorSettings,
    scenario: Scenario,
    *,
    worker_groups: Mapping[str, str],
    managed: set[str],
    controlled: set[str],
    has_server_control: bool,
    members: Callable[[list[str]], dict[str, int]],
    rental_needed: Callable[[], list[str]] | None = None,
    cluster: ClusterControl | None = None,
) -> None:
    """Raise PreflightError naming every unreachable part the scenario needs."""
    kafka = kafka_problem(settings)
    problems = [kafka] if kafka else []
    problems += _server_problems(settings, scenario, managed, has_server_control)
    if not kafka:
        problems += _missing_workers(scenario, worker_groups, managed, members)
    problems += _uncontrolled_faults(scenario, controlled)
    problems += _cluster_fault_problems(scenario, cluster, controlled)
    if rental_needed is not None:
        problems += rental_needed()
    if problems:
        raise PreflightError(problems)


def _server_problems(
    settings: SimulatorSettings, scenario: Scenario, managed: set[str], has_server_control: bool
) -> list[str]:
    """Redis and the managed workers' databases, when the run needs them, and control of the servers for faults."""
    problems: list[str] = []
    faults = scenario.faults
    if managed or any(isinstance(f, RedisOutageFault) for f in faults):
        why = redis_problem(settings.redis_url)
        if why:
            problems.append(why)
    for kind in managed:
        own = getattr(settings, f"worker_database_url_{kind}", None)
        url = own.get_secret_value() if own is not None else settings.database_url
        why = database_problem(url, f"the {kind} workers' database") if url else None
        if why:
            problems.append(why)
    if any(isinstance(f, BrokerRestartFault | RedisOutageFault) for f in faults) and not has_server_control:
        problems.append(
            "broker and Redis faults need control of the servers: none found (run against `make up`'s stack, "
            "or set SIMULATOR_INFRA=native|compose)"
        )
    return problems


def _missing_workers(
    scenario: Scenario,
    worker_groups: Mapping[str, str],
    managed: set[str],
    members: Callable[[list[str]], dict[str, int]],
) -> list[str]:
    """The kinds the scenario runs that the simulator does not manage and whose consumer group has no member."""
    unmanaged = [k for k in scenario.kinds() if k not in managed]
    if not unmanaged:
        return []
    found = members([worker_groups[k] for k in unmanaged])
    return [
        f"no {kind} worker is running: consumer group {worker_groups[kind]!r} has no members "
        f"(start the service, e.g. `make up`, or set workers.{kind}.count in the scenario)"
        for kind in unmanaged
        if not found.get(worker_groups[kind])
    ]


def _uncontrolled_faults(scenario: Scenario, controlled: set[str]) -> list[str]:
    """The worker faults whose target has no worker under the simulator's control."""
    problems = []
    for i, fault in enumerate(scenario.faults):
        if isinstance(fault, KillWorkerFault | SlowConsumerFault | PauseWorkerFault):
            reachable = controlled if fault.target == "any" else controlled & {fault.target}
            if not reachable:
                problems.append(
                    f"faults[{i}] ({fault.kind}, target {fault.target}) needs workers under control: set "
                    f"workers.<kind>.count in the scenario (the simulator then runs them), or run against Compose"
                )
    return problems


def _cluster_fault_problems(scenario: Scenario, cluster: ClusterControl | None, controlled: set[str]) -> list[str]:
    """The cluster faults the run cannot inject: no cluster under control, a node it lacks, no worker to cut off."""
    problems = []
    nodes = cluster.node_ids() if cluster is not None else []
    for i, fault in scenario.cluster_faults():
        where = f"faults[{i}] ({fault.kind})"
        if cluster is None:
            problems.append(
                f"{where} needs a Kafka cluster under the simulator's control: none was found (a native cluster "
                f"behind fault proxies, the tooling's ProxiedCluster, or Compose's `cluster` profile)"
            )
            continue
        node = getattr(fault, "node", "any")
        if isinstance(node, int) and node not in nodes:
            problems.append(f"{where}.node: the cluster has no node {node} (its nodes: {sorted(nodes)})")
        if isinstance(fault, PartitionFault) and fault.isolate == "worker":
            wanted = set(scenario.kinds()) if fault.target == "any" else {fault.target}
            if not wanted & controlled:
                problems.append(
                    f"{where}.target: a worker partition needs a {fault.target} worker under control "
                    f"(set workers.<kind>.count in the scenario, or run against Compose)"
                )
    return problems
