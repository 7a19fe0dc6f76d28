"""Run Quartet's service processes: in Compose when `make infra-up` chose it, natively otherwise.

Natively, the processes are listed in `deploy/native/services.json` (name, command, HTTP port); each runs
detached under a keeper (`quartet_tools.keeper`), which starts it again when it dies, with its log in
`.local/logs/NAME.log` and the keeper's pid and state in `.local/run/services/NAME/`. A job service runs
its API (with the status projector) and a pool of worker processes, `NAME.worker-1` to `NAME.worker-N`: one
consumer group, so they split the jobs topic's partitions. N is `QUARTET_TRAINING_WORKERS` /
`QUARTET_PLANNER_WORKERS`, by default half the cores this process may run on (the two job services share them),
at least 1 and at most the jobs topic's partitions. With Compose, docker-compose.yml's default profile (every
API, worker and relay container) is built and started.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from quartet_shared.auth import write_api_keys_file
from quartet_shared.clients import partition_counts
from quartet_shared.net import free_port
from quartet_shared.settings import KernelSettings, SettingsError, load_settings

from quartet_tools.infra import (
    API_KEYS_FILE,
    LOCAL,
    ROOT,
    STATE_DIR,
    Server,
    Stack,
    compose_active,
    compose_command,
    wait_for,
)
from quartet_tools.keeper import KeeperState

MANIFEST = ROOT / "deploy" / "native" / "services.json"
PIDS = LOCAL / "run" / "services"
LOGS = LOCAL / "logs"
# Far above what a machine here runs; it only stops a typo (a count of 1000) from forking the machine to death.
MAX_WORKERS = 64
KEEPER_STATE = "keeper.json"

DatabaseEnv = Callable[[str], dict[str, str]]
PartitionCounts = Callable[[list[str]], dict[str, int]]


class WorkerSettings(BaseSettings):
    """How many worker processes `make up` runs per job service; unset: `default_workers`' rule."""

    model_config = SettingsConfigDict(env_prefix="QUARTET_", extra="ignore", env_file=".env", env_ignore_empty=True)

    training_workers: int | None = Field(None, ge=1, le=MAX_WORKERS, description="training-worker's workers")
    planner_workers: int | None = Field(None, ge=1, le=MAX_WORKERS, description="path-planner's workers")


def available_cpus() -> int:
    """The cores this process may run on (its affinity mask, which taskset and cgroups narrow), else all."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers(cpus: int, partitions: int) -> int:
    """Half the cores for each job service (both together one worker process per core, each using one core:
    TRAINING_BLAS_THREADS is 1), at least 1, and no more than the jobs topic's partitions."""
    return max(1, min(cpus // 2, partitions))


@dataclass(frozen=True)
class WorkerPool:
    """A job service's worker processes: the command of one, the setting that counts them, and its jobs topic."""

    command: list[str]
    setting: str
    prefix: str
    topic: str

    @property
    def field(self) -> str:
        """The `WorkerSettings` field of `setting`."""
        return self.setting.removeprefix("QUARTET_").lower()

    def count(self, settings: WorkerSettings, partitions: int, cpus: int) -> int:
        """How many to run: the setting, else the default rule; more than the topic's partitions is refused, since
        the group would leave the extra ones without a partition."""
        wanted: int | None = getattr(settings, self.field)
        if wanted is None:
            return default_workers(cpus, partitions)
        if wanted > partitions:
            raise SettingsError(
                f"{self.setting}={wanted}: the topic {self.topic} has {partitions} partition(s), and a worker beyond "
                f"them would get none; ask for at most {partitions}, or create the topics with more "
                "(QUARTET_TOPIC_PARTITIONS, before `make up` first creates them)"
            )
        return wanted


@dataclass
class ServiceProcess:
    """One service process from the manifest (or one worker of a job service's pool)."""

    name: str
    command: list[str]
    port: int | None
    database_role: str | None = None
    workers: WorkerPool | None = None
    env: dict[str, str] = field(default_factory=dict)

    def healthy(self) -> bool:
        """True when its /healthz answers 200 (or, with no port, when it is alive)."""
        if self.port is None:
            return True
        return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200


def manifest() -> list[ServiceProcess]:
    """The services `make up` runs."""
    data = json.loads(MANIFEST.read_text())
    return [
        ServiceProcess(
            s["name"],
            list(s["command"]),
            s.get("port"),
            s.get("database_role"),
            WorkerPool(**s["workers"]) if "workers" in s else None,
        )
        for s in data["services"]
    ]


def launch_env(
    svc: ServiceProcess, database_env: DatabaseEnv, api_keys: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What `make up` adds to a service's environment: the venv on PATH, its name, its own database role's settings
    and the API keys (`api_keys`' variables, unless the environment already sets them)."""
    venv_bin = Path(sys.executable).parent
    env = {"PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}", "QUARTET_SERVICE_NAME": svc.name}
    env.update({name: value for name, value in (api_keys or {}).items() if name not in os.environ})
    if svc.database_role is not None:
        env.update(database_env(svc.database_role))
    return env


@dataclass
class Supervisor:
    """Starts, stops and reports the native service processes, each with a pid directory under `pids`."""

    services: list[ServiceProcess]
    pids: Path = PIDS
    logs: Path = LOGS
    # Added to every process's environment after the rest (the tests' servers, ports and topic prefix).
    env: Mapping[str, str] = field(default_factory=dict)

    def server(self, svc: ServiceProcess) -> Server:
        """The process bookkeeping (pidfile, log) shared with the infra servers; its pid is the keeper's."""
        return Server(svc.name, svc.port or 0, self.pids / svc.name)

    def kept(self, svc: ServiceProcess) -> KeeperState | None:
        """What `svc`'s keeper says (the pid of the process it keeps, its starts), None when no keeper runs."""
        server = self.server(svc)
        return KeeperState.read(server.workdir / KEEPER_STATE) if server.running() else None

    def workers(self, svc: ServiceProcess) -> list[ServiceProcess]:
        """The worker processes of `svc` that have a pid directory, by slot (running or not)."""
        if svc.workers is None:
            return []
        found: list[tuple[int, ServiceProcess]] = []
        for workdir in self.pids.glob(f"{svc.name}.worker-*"):
            slot = workdir.name.rsplit("-", 1)[1]
            port = (workdir / "port").read_text().strip() if (workdir / "port").exists() else ""
            if slot.isdigit() and port.isdigit():
                found.append((int(slot), self._worker(svc, int(slot), int(port))))
        return [worker for _, worker in sorted(found, key=lambda pair: pair[0])]

    def _worker(self, svc: ServiceProcess, slot: int, port: int) -> ServiceProcess:
        assert svc.workers is not None
        pool = svc.workers
        # Its own ops port, and an instance id stable per slot, so a restarted worker fences its predecessor.
        env = {f"{pool.prefix}PORT": str(port), f"{pool.prefix}INSTANCE_ID": f"worker-{slot}"}
        return replace(svc, name=f"{svc.name}.worker-{slot}", command=pool.command, port=port, workers=None, env=env)

    def start(self, svc: ServiceProcess, env: Mapping[str, str]) -> None:
        """Start `svc` unless it runs, with `env`, and wait for its health check."""
        server = self.server(svc)
        if server.running():
            return
        self.logs.mkdir(parents=True, exist_ok=True)
        server.workdir.mkdir(parents=True, exist_ok=True)
        if svc.port is not None:
            (server.workdir / "port").write_text(str(svc.port))
        (server.workdir / KEEPER_STATE).unlink(missing_ok=True)
        keeper = [sys.executable, "-m", "quartet_tools.keeper", "--state", str(server.workdir / KEEPER_STATE), "--"]
        server._spawn([*keeper, *svc.command], env={**env, **self.env, **svc.env})
        link = self.logs / f"{svc.name}.log"
        link.unlink(missing_ok=True)
        link.symlink_to(server.logfile)
        wait_for(svc.healthy, f"service {svc.name}", 90, server.logfile, gone=server.gone)

    def scale(self, svc: ServiceProcess, count: int, env: Mapping[str, str]) -> None:
        """Run exactly `count` workers of `svc`: slots 1..count started, any beyond them (an earlier count) stopped."""
        existing = {worker.name: worker for worker in self.workers(svc)}
        for slot in range(1, count + 1):
            name = f"{svc.name}.worker-{slot}"
            worker = existing.pop(name, None)
            if worker is None or not self.server(worker).running():
                worker = self._worker(svc, slot, free_port())
            self.start(worker, env)
        for extra in existing.values():
            self.stop(extra)

    def stop(self, svc: ServiceProcess) -> None:
        """SIGTERM it (it exits within 30 s by contract) and forget its pid directory's port."""
        server = self.server(svc)
        server.stop(timeout_s=35)
        (server.workdir / "port").unlink(missing_ok=True)

    def up(self, database_env: DatabaseEnv, api_keys: Mapping[str, str], partitions: PartitionCounts) -> None:
        """Start every service and the workers of each job service that are not running; a bad worker count stops
        it before any process starts, one beyond the jobs topic's partitions before that service's workers do."""
        settings = load_settings(WorkerSettings)
        cpus = available_cpus()
        for svc in self.services:
            env = launch_env(svc, database_env, api_keys)
            self.start(svc, env)
            if svc.workers is not None:
                # The API has made sure its topics exist (as `make up`'s `quartet topics --create` did before).
                topic = {**os.environ, **self.env}.get(f"{svc.workers.prefix}TOPIC_PREFIX", "") + svc.workers.topic
                self.scale(svc, svc.workers.count(settings, partitions([topic])[topic], cpus), env)

    def down(self) -> None:
        """Stop every service, its workers first, in reverse order."""
        for svc in reversed(self.services):
            for worker in reversed(self.workers(svc)):
                self.stop(worker)
            self.stop(svc)

    def status(self) -> list[dict[str, object]]:
        """Each process's pid, port and health; a job service's row adds how many workers run and the setting."""
        settings = load_settings(WorkerSettings)
        out: list[dict[str, object]] = []
        for svc in self.services:
            workers = [w for w in self.workers(svc) if self.server(w).running()]
            row = self._row(svc)
            if svc.workers is not None:
                wanted = getattr(settings, svc.workers.field)
                setting = (
                    f"{svc.workers.setting}={wanted}" if wanted else f"{svc.workers.setting} unset: half the cores"
                )
                row["workers"] = f"{len(workers)} worker(s) ({setting})"
            out.append(row)
            out.extend(self._row(worker) for worker in workers)
        return out

    def _row(self, svc: ServiceProcess) -> dict[str, object]:
        pid = self.server(svc).pid()
        try:
            healthy = pid is not None and svc.healthy()
        except httpx.HTTPError:
            healthy = False
        kept = self.kept(svc)
        restarts = kept.starts - 1 if kept else 0
        return {"service": svc.name, "pid": pid, "port": svc.port, "healthy": healthy, "restarts": restarts}


def supervisor() -> Supervisor:
    """The supervisor of `make up`'s native processes."""
    return Supervisor(manifest())


def broker_partitions(topics: list[str]) -> dict[str, int]:
    """The partitions of each topic on the broker of the environment's settings (`make up` created them)."""
    return partition_counts(load_settings(KernelSettings), topics)


def up() -> None:
    """Start every service that is not running and wait for its health check."""
    # Written once, before Compose reads it as an env file or a native process is started with it.
    api_keys = write_api_keys_file(API_KEYS_FILE)
    if compose_active():
        from quartet_tools import images  # it imports the infra module this one does

        # The services' images need their wheels staged on the host first, which `compose up --build` cannot do:
        # the registry builds them (docker's cache makes a second `make up` quick), then Compose only runs them.
        profiles = (*images.SERVERS, *images.TRACING, *images.OBSERVABILITY, *images.CLUSTER)
        images.build(name for name in images.IMAGES if name not in profiles)
        # --wait: until every container is healthy (services) or has exited 0 (the one-shot steps).
        subprocess.run([*compose_command(), "up", "-d", "--wait"], check=True)
        return
    postgres = Stack.at(STATE_DIR, standard_ports=True).postgres
    supervisor().up(postgres.service_env, api_keys, broker_partitions)
    from quartet_tools.metrics import refresh_targets  # it imports this module

    # A `make metrics` Prometheus started before scrapes the workers this run started too.
    refresh_targets()


def down() -> None:
    """SIGTERM every service (they exit within 30 s by contract), in reverse order."""
    if compose_active():
        # The containers go; the named volumes (Kafka's log, PostgreSQL's data) stay for the next `make up`.
        subprocess.run([*compose_command(), "down", "--remove-orphans"], check=False)
        return
    supervisor().down()


def status() -> list[dict[str, object]]:
    """Each service's pid, port and health."""
    if compose_active():
        return compose_status()
    return supervisor().status()


def compose_status() -> list[dict[str, object]]:
    """Each Compose container's state and health."""
    ps = subprocess.run([*compose_command(), "ps", "--all", "--format", "json"], capture_output=True, text=True)
    rows = [json.loads(line) for line in ps.stdout.splitlines() if line.strip().startswith("{")]
    return [
        {
            "service": row.get("Service"),
            "pid": None,
            "port": next((p.get("PublishedPort") for p in row.get("Publishers") or [] if p.get("PublishedPort")), None),
            "healthy": row.get("Health") == "healthy",
            "state": row.get("State"),
        }
        for row in rows
    ]


def status_lines(rows: list[dict[str, object]]) -> list[str]:
    """`make up`'s summary of the processes: one line each, a job service's with its worker count."""
    if not rows:
        return ["no service processes are defined in deploy/native/services.json yet"]
    lines = []
    for row in rows:
        port = row["port"] or "-"
        state = "healthy" if row["healthy"] else str(row.get("state") or ("running" if row["pid"] else "stopped"))
        workers = f"  {row['workers']}" if row.get("workers") else ""
        restarts = f"  restarted {row['restarts']}x" if row.get("restarts") else ""
        lines.append(f"  {row['service']:<28} port {port!s:<6} {state}{workers}{restarts}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """`python -m quartet_tools.services up|down|status`."""
    parser = argparse.ArgumentParser(prog="quartet-services", description=__doc__)
    parser.add_argument("action", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    try:
        if args.action == "up":
            up()
        elif args.action == "down":
            down()
        else:
            print("\n".join(status_lines(status())))
    except SettingsError as exc:
        print(f"quartet-services: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
