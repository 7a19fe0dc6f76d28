"""The servers `make up` started on this host, as the simulator's fault target.

The simulator is a runtime service and must not import the tooling; where the tooling is installed (a developer's
host, never an image) it finds these functions through the `quartet.servers` entry points instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from quartet_tools.cluster import ProxiedCluster
from quartet_tools.infra import STATE_DIR, Stack, docker_available, pid_alive, saved_nodes
from quartet_tools.keeper import KeeperState
from quartet_tools.services import ServiceProcess, Supervisor, supervisor


def compose_running() -> bool:
    """True when `make up` started the servers with Compose (its marker file is present and Docker answers)."""
    return (STATE_DIR / "docker").exists() and docker_available()


def native_cluster(state: str) -> ProxiedCluster | None:
    """The cluster `make up KAFKA_NODES=3` started behind its fault proxies and described under `state`, or None."""
    return ProxiedCluster.attach(Path(state))


def native_control(kafka_bootstrap: str) -> Stack | None:
    """The native stack `make up` started, if `kafka_bootstrap` points at its broker."""
    stack = Stack.at(STATE_DIR, standard_ports=True, kafka_nodes=saved_nodes())
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


# The simulator's job kinds and the services whose workers `make up` runs for them.
WORKER_SERVICES = {"training": "training-worker", "planning": "path-planner"}


@dataclass
class KeptWorkers:
    """`make up`'s native workers as the simulator's worker faults see them: SIGKILL one, and its keeper starts it
    again in its slot; freeze one or all (SIGSTOP, SIGCONT). `counts` gives the simulator's WorkerStats fields."""

    supervisor: Supervisor
    killed: dict[str, int] = field(default_factory=dict)

    def _workers(self, kind: str | None) -> list[tuple[str, ServiceProcess, KeeperState | None]]:
        services = {svc.name: svc for svc in self.supervisor.services}
        found = []
        for each, name in WORKER_SERVICES.items():
            if (kind is None or kind == each) and name in services:
                workers = self.supervisor.workers(services[name])
                found += [(each, worker, self.supervisor.kept(worker)) for worker in workers]
        return found

    def _live(self, kind: str | None) -> list[tuple[str, str, int]]:
        return [
            (each, worker.name, state.pid)
            for each, worker, state in self._workers(kind)
            if state is not None and state.pid is not None and pid_alive(state.pid)
        ]

    def _pick(self, kind: str | None, pick: float) -> tuple[str, str, int]:
        live = self._live(kind)
        if not live:
            raise RuntimeError(f"no live {kind or 'job'} worker of `make up` under a keeper")
        return live[min(len(live) - 1, int(pick * len(live)))]

    def kinds(self) -> list[str]:
        """Kinds with a live worker."""
        return sorted({each for each, _, _ in self._live(None)})

    def kill(self, kind: str | None, pick: float) -> str:
        """SIGKILL one live worker of `kind` (its keeper restarts it)."""
        each, name, pid = self._pick(kind, pick)
        os.kill(pid, signal.SIGKILL)
        self.killed[each] = self.killed.get(each, 0) + 1
        return f"{each} worker {name} (pid {pid})"

    def freeze(self, kind: str | None, frozen: bool) -> list[str]:
        """SIGSTOP (or SIGCONT) every live worker of `kind`."""
        for _, _, pid in self._live(kind):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP if frozen else signal.SIGCONT)
        return [f"{each} worker {name}" for each, name, _ in self._live(kind)]

    def pause_one(self, kind: str | None, pick: float) -> tuple[str, Callable[[], None]]:
        """SIGSTOP one live worker of `kind`; the returned callable sends it SIGCONT."""
        each, name, pid = self._pick(kind, pick)
        os.kill(pid, signal.SIGSTOP)

        def resume() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

        return f"{each} worker {name} (pid {pid})", resume

    def counts(self) -> dict[str, dict[str, int]]:
        """Per kind: the workers, their starts and restarts (by their keepers), and the SIGKILLs sent here."""
        out: dict[str, dict[str, int]] = {}
        for each, _, state in self._workers(None):
            row = out.setdefault(each, {"managed": 0, "starts": 0, "restarts": 0, "killed": self.killed.get(each, 0)})
            row["managed"] += 1
            row["starts"] += state.starts if state else 0
            row["restarts"] += max(0, state.starts - 1) if state else 0
        return out


def native_workers(kafka_bootstrap: str) -> KeptWorkers | None:
    """`make up`'s native workers, if `kafka_bootstrap` points at its broker and any of them runs."""
    if native_control(kafka_bootstrap) is None:
        return None
    workers = KeptWorkers(supervisor())
    return workers if workers.kinds() else None
