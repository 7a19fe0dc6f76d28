"""Run Quartet's service processes: in Compose when `make infra-up` chose it, natively otherwise.

Natively, the processes are listed in `deploy/native/services.json` (name, command, HTTP port); each runs
detached with its log in `.local/logs/NAME.log` and its pid in `.local/run/services/NAME.pid`. With Compose,
docker-compose.yml's default profile (every API, worker and relay container) is built and started.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from quartet_shared.auth import write_api_keys_file

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

MANIFEST = ROOT / "deploy" / "native" / "services.json"
PIDS = LOCAL / "run" / "services"
LOGS = LOCAL / "logs"


@dataclass
class ServiceProcess:
    """One service process from the manifest."""

    name: str
    command: list[str]
    port: int | None
    database_role: str | None = None

    @property
    def server(self) -> Server:
        """The process bookkeeping (pidfile, log) shared with the infra servers."""
        return Server(self.name, self.port or 0, PIDS / self.name)

    def healthy(self) -> bool:
        """True when its /healthz answers 200 (or, with no port, when it is alive)."""
        if self.port is None:
            return self.server.running()
        return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200


def manifest() -> list[ServiceProcess]:
    """The services `make up` runs."""
    data = json.loads(MANIFEST.read_text())
    return [
        ServiceProcess(s["name"], list(s["command"]), s.get("port"), s.get("database_role")) for s in data["services"]
    ]


def launch_env(
    svc: ServiceProcess, database_env: Callable[[str], dict[str, str]], api_keys: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What `make up` adds to a service's environment: the venv on PATH, its name, its own database role's settings
    and the API keys (`api_keys`' variables, unless the environment already sets them)."""
    venv_bin = Path(sys.executable).parent
    env = {"PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}", "QUARTET_SERVICE_NAME": svc.name}
    env.update({name: value for name, value in (api_keys or {}).items() if name not in os.environ})
    if svc.database_role is not None:
        env.update(database_env(svc.database_role))
    return env


def up() -> None:
    """Start every service that is not running and wait for its health check."""
    # Written once, before Compose reads it as an env file or a native process is started with it.
    api_keys = write_api_keys_file(API_KEYS_FILE)
    if compose_active():
        from quartet_tools import images  # it imports the infra module this one does

        # The services' images need their wheels staged on the host first, which `compose up --build` cannot do:
        # the registry builds them (docker's cache makes a second `make up` quick), then Compose only runs them.
        images.build(name for name in images.IMAGES if name not in images.SERVERS)
        # --wait: until every container is healthy (services) or has exited 0 (the one-shot steps).
        subprocess.run([*compose_command(), "up", "-d", "--wait"], check=True)
        return
    postgres = Stack.at(STATE_DIR, standard_ports=True).postgres
    for svc in manifest():
        server = svc.server
        if server.running():
            continue
        LOGS.mkdir(parents=True, exist_ok=True)
        server.workdir.mkdir(parents=True, exist_ok=True)
        server._spawn(svc.command, env=launch_env(svc, postgres.service_env, api_keys))
        (LOGS / f"{svc.name}.log").unlink(missing_ok=True)
        (LOGS / f"{svc.name}.log").symlink_to(server.logfile)
        wait_for(svc.healthy, f"service {svc.name}", 90, server.logfile)


def down() -> None:
    """SIGTERM every service (they exit within 30 s by contract), in reverse order."""
    if compose_active():
        # The containers go; the named volumes (Kafka's log, PostgreSQL's data) stay for the next `make up`.
        subprocess.run([*compose_command(), "down", "--remove-orphans"], check=False)
        return
    for svc in reversed(manifest()):
        svc.server.stop(timeout_s=35)


def status() -> list[dict[str, object]]:
    """Each service's pid, port and health."""
    if compose_active():
        return compose_status()
    out: list[dict[str, object]] = []
    for svc in manifest():
        try:
            healthy = svc.healthy()
        except httpx.HTTPError:
            healthy = False
        out.append({"service": svc.name, "pid": svc.server.pid(), "port": svc.port, "healthy": healthy})
    return out


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


def main(argv: list[str] | None = None) -> int:
    """`python -m quartet_tools.services up|down|status`."""
    parser = argparse.ArgumentParser(prog="quartet-services", description=__doc__)
    parser.add_argument("action", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    if args.action == "up":
        up()
    elif args.action == "down":
        down()
    else:
        rows = status()
        if not rows:
            print("no service processes are defined in deploy/native/services.json yet")
        for row in rows:
            port = row["port"] or "-"
            state = "healthy" if row["healthy"] else str(row.get("state") or ("running" if row["pid"] else "stopped"))
            print(f"  {row['service']:<20} port {port!s:<6} {state}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
