"""Worker processes the faults act on: native processes the simulator starts, supervises and restarts itself,
or the containers of a Compose project, reached through the Docker API.

Both offer the same operations: SIGKILL one worker of a kind (it comes back: the supervisor restarts a
native one, Compose's restart policy or the simulator restarts a container), and freeze a worker for a
while (SIGSTOP/SIGCONT, or the Docker pause) to make a slow consumer.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from quartet_shared.net import free_port
from quartet_shared.restarts import RestartPolicy

from simulator.domain.report import WorkerStats

if TYPE_CHECKING:
    from pydantic import SecretStr

    from simulator.domain.scenario import WorkerPool
    from simulator.settings import SimulatorSettings

log = logging.getLogger(__name__)

# The prefixes of every service's own settings: a managed worker gets only the ones it is told about.
_SERVICE_PREFIXES = ("TRAINING_", "PLANNER_", "RENTAL_", "SIMULATOR_", "QUARTET_")


class WorkerControl(Protocol):
    """What the faults need from the workers, wherever they run."""

    def kinds(self) -> list[str]:
        """Kinds that have workers under control."""
        ...

    def kill(self, kind: str | None, pick: float) -> str:
        """SIGKILL one live worker of `kind` (any kind when None), chosen by `pick` in [0, 1); says which."""
        ...

    def freeze(self, kind: str | None, frozen: bool) -> list[str]:
        """Freeze (or thaw) every worker of `kind`; returns which."""
        ...

    def pause_one(self, kind: str | None, pick: float) -> tuple[str, Callable[[], None]]:
        """Freeze one live worker of `kind`, chosen by `pick`; returns which and how to let it run again."""
        ...

    def stats(self) -> dict[str, WorkerStats]:
        """Starts, restarts and kills per kind."""
        ...


class WorkerError(RuntimeError):
    """A worker could not be started, found or signalled."""


# ---- native processes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerCommand:
    """How to run one kind's worker: the command line, its environment, and the variable naming its slot.

    Each slot gets its own instance id, stable across restarts: it names the worker's transactional id, so a
    restarted worker fences its killed predecessor (and two live workers never fence each other).
    """

    kind: str
    argv: list[str]
    env: Mapping[str, str]
    instance_variable: str | None = None
    port_variable: str | None = None
    slot_env: Mapping[int, Mapping[str, str]] = field(default_factory=dict)

    def environment(self, slot: int) -> dict[str, str]:
        """The environment of the worker in `slot` (with a free port for its health and metrics endpoints)."""
        env = {**self.env, **self.slot_env.get(slot, {})}
        if self.instance_variable:
            env[self.instance_variable] = f"sim-{self.kind}-{slot}"
        if self.port_variable:
            env[self.port_variable] = str(free_port())
        return env


def resolve_command(command: str) -> list[str]:
    """Split a command line and find its program beside this Python (the venv) or on the PATH."""
    argv = shlex.split(command)
    if not argv:
        raise WorkerError("empty worker command")
    beside = Path(sys.executable).parent / argv[0]
    if beside.exists():
        return [str(beside), *argv[1:]]
    found = shutil.which(argv[0])
    if found is None:
        raise WorkerError(f"worker command {argv[0]!r} not found beside {sys.executable} or on the PATH")
    return [found, *argv[1:]]


def base_environment() -> dict[str, str]:
    """This process's environment without any service's own settings (each worker gets exactly its own)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_SERVICE_PREFIXES) and k not in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "DATABASE_URL")
    }


def worker_command(settings: SimulatorSettings, kind: str, pool: WorkerPool) -> WorkerCommand:
    """How to run a managed worker of `kind`: its command, and an environment pointing it at the run's servers."""
    prefix = getattr(settings, f"worker_env_prefix_{kind}")
    env = base_environment()
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "REDIS_URL": settings.redis_url,
            f"{prefix}TOPIC_PREFIX": settings.topic_prefix,
            f"{prefix}TOPIC_PARTITIONS": str(settings.topic_partitions),
            # On a cluster the topics a worker creates (retries, dead letters, changelogs) are replicated like the rest.
            f"{prefix}TOPIC_REPLICATION_FACTOR": str(settings.topic_replication_factor),
            f"{prefix}RENDER_PLOTS": "true" if pool.render_plots else "false",
            f"{prefix}SERVICE_NAME": f"sim-{kind}-worker",
            # Each worker serves health and metrics on a free port of its own (see WorkerCommand).
            f"{prefix}HOST": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
        }
    )
    own: SecretStr | None = getattr(settings, f"worker_database_url_{kind}")
    if own is not None:
        # The worker's role's URL carries its password; the simulator's own PGPASSWORD is not for it.
        env.pop("PGPASSWORD", None)
        env["DATABASE_URL"] = own.get_secret_value()
    elif settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    env.update(pool.env)
    argv = resolve_command(getattr(settings, f"worker_command_{kind}"))
    return WorkerCommand(kind, argv, env, instance_variable=f"{prefix}INSTANCE_ID", port_variable=f"{prefix}PORT")


@dataclass
class _Slot:
    kind: str
    slot: int
    command: WorkerCommand
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    frozen: bool = False
    log_path: Path | None = None
    # Deaths the faults cause are restarted after the fixed delay; others back off and are bounded by this.
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    killed: bool = False
    given_up: bool = False


@dataclass
class NativeWorkers:
    """Worker processes started from commands. One the faults SIGKILLed is restarted after `restart_delay_s`; one
    that died by itself after the shared `RestartPolicy`'s backoff from that delay, and not past its bound."""

    commands: Mapping[str, WorkerCommand]
    counts: Mapping[str, int]
    logdir: Path
    restart_delay_s: float = 1.0
    restarts_per_minute: int = 5
    on_event: Callable[[str], None] = lambda _msg: None
    _slots: list[_Slot] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _stats: dict[str, WorkerStats] = field(default_factory=dict)
    _dead_since: dict[int, float] = field(default_factory=dict)

    def start(self) -> None:
        """Start every worker and the watcher that restarts the dead."""
        self.logdir.mkdir(parents=True, exist_ok=True)
        for kind, count in self.counts.items():
            self._stats[kind] = WorkerStats(managed=count)
            for slot in range(count):
                entry = _Slot(kind, slot, self.commands[kind], policy=self._policy())
                self._slots.append(entry)
                self._spawn(entry)
        self._thread = threading.Thread(target=self._watch, name="sim-supervisor", daemon=True)
        self._thread.start()

    def _policy(self) -> RestartPolicy:
        return RestartPolicy(delay_s=self.restart_delay_s, per_window=self.restarts_per_minute)

    def kinds(self) -> list[str]:
        """Kinds with at least one managed worker."""
        return sorted({s.kind for s in self._slots})

    def _spawn(self, entry: _Slot) -> None:
        entry.starts += 1
        entry.log_path = self.logdir / f"{entry.kind}-{entry.slot}.log"
        with entry.log_path.open("ab") as out:
            out.write(f"\n==== start {entry.starts} at {time.strftime('%H:%M:%S')} ====\n".encode())
            out.flush()
            entry.proc = subprocess.Popen(
                entry.command.argv,
                env=entry.command.environment(entry.slot),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        entry.frozen = False
        stats = self._stats[entry.kind]
        stats.starts += 1
        if entry.starts > 1:
            stats.restarts += 1

    def _watch(self) -> None:
        while not self._stopping.wait(0.2):
            with self._lock:
                for n, entry in enumerate(self._slots):
                    if entry.proc is None or entry.proc.poll() is None or entry.given_up:
                        continue
                    died = self._dead_since.setdefault(n, time.monotonic())
                    delay = self.restart_delay_s if entry.killed else entry.policy.next_delay(died)
                    if delay is None:
                        entry.given_up = True
                        self.on_event(f"{entry.kind} worker {entry.slot} keeps dying; not restarted again")
                        continue
                    if time.monotonic() - died < delay:
                        continue
                    del self._dead_since[n]
                    if not entry.killed:
                        entry.policy.restarted(time.monotonic())
                    entry.killed = False
                    self.on_event(f"{entry.kind} worker {entry.slot} exited ({entry.proc.returncode}); restarting")
                    self._spawn(entry)

    def _live(self, kind: str | None) -> list[_Slot]:
        return [
            s for s in self._slots if (kind is None or s.kind == kind) and s.proc is not None and s.proc.poll() is None
        ]

    def kill(self, kind: str | None, pick: float) -> str:
        """SIGKILL one live worker of `kind`."""
        with self._lock:
            live = self._live(kind)
            if not live:
                raise WorkerError(f"no live {kind or 'managed'} worker to kill")
            entry = live[min(len(live) - 1, int(pick * len(live)))]
            assert entry.proc is not None
            pid = entry.proc.pid
            if entry.frozen:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            entry.proc.send_signal(signal.SIGKILL)
            entry.proc.wait(10)
            entry.killed = True
            self._stats[entry.kind].killed += 1
        return f"{entry.kind} worker {entry.slot} (pid {pid})"

    def freeze(self, kind: str | None, frozen: bool) -> list[str]:
        """SIGSTOP (or SIGCONT) every live worker of `kind`."""
        out = []
        with self._lock:
            for entry in self._live(kind):
                assert entry.proc is not None
                with contextlib.suppress(ProcessLookupError):
                    os.kill(entry.proc.pid, signal.SIGSTOP if frozen else signal.SIGCONT)
                entry.frozen = frozen
                out.append(f"{entry.kind} worker {entry.slot}")
        return out

    def pause_one(self, kind: str | None, pick: float) -> tuple[str, Callable[[], None]]:
        """SIGSTOP one live worker of `kind`; the returned callable sends it SIGCONT."""
        with self._lock:
            live = self._live(kind)
            if not live:
                raise WorkerError(f"no live {kind or 'managed'} worker to pause")
            entry = live[min(len(live) - 1, int(pick * len(live)))]
            assert entry.proc is not None
            proc = entry.proc
            os.kill(proc.pid, signal.SIGSTOP)
            entry.frozen = True

        def resume() -> None:
            with self._lock:
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGCONT)
                entry.frozen = False

        return f"{entry.kind} worker {entry.slot} (pid {proc.pid})", resume

    def alive(self) -> dict[str, int]:
        """Live workers per kind."""
        with self._lock:
            out = dict.fromkeys(self.counts, 0)
            for entry in self._live(None):
                out[entry.kind] += 1
            return out

    def stats(self) -> dict[str, WorkerStats]:
        """Starts, restarts and kills per kind."""
        with self._lock:
            return {k: v.model_copy() for k, v in self._stats.items()}

    def stop(self, timeout_s: float = 35.0) -> None:
        """SIGTERM every worker (thawing frozen ones), wait, and SIGKILL what will not go."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            live = self._live(None)
            for entry in live:
                assert entry.proc is not None
                with contextlib.suppress(ProcessLookupError):
                    os.kill(entry.proc.pid, signal.SIGCONT)
                    entry.proc.terminate()
            deadline = time.monotonic() + timeout_s
            for entry in live:
                assert entry.proc is not None
                try:
                    entry.proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    entry.proc.kill()
                    entry.proc.wait(10)

    def tail(self, kind: str, lines: int = 20) -> str:
        """The last lines of a kind's first worker log (for error messages)."""
        for entry in self._slots:
            if entry.kind == kind and entry.log_path is not None and entry.log_path.exists():
                return "\n".join(entry.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


@dataclass
class HostWorkers:
    """`make up`'s native workers, through the tooling's `native_workers` hook (`quartet.servers` entry points):
    each runs under a keeper that starts it again in its slot, with its instance id, when it dies."""

    host: Any

    def kinds(self) -> list[str]:
        """Kinds with a live worker."""
        return list(self.host.kinds())

    def kill(self, kind: str | None, pick: float) -> str:
        """SIGKILL one live worker of `kind`; its keeper restarts it."""
        return str(self.host.kill(kind, pick))

    def freeze(self, kind: str | None, frozen: bool) -> list[str]:
        """SIGSTOP (or SIGCONT) every live worker of `kind`."""
        return list(self.host.freeze(kind, frozen))

    def pause_one(self, kind: str | None, pick: float) -> tuple[str, Callable[[], None]]:
        """SIGSTOP one live worker of `kind`; the returned callable sends it SIGCONT."""
        which, resume = self.host.pause_one(kind, pick)
        return str(which), resume

    def stats(self) -> dict[str, WorkerStats]:
        """Workers, starts, restarts (by their keepers) and kills per kind."""
        return {kind: WorkerStats(**row) for kind, row in self.host.counts().items()}


# ---- Compose containers --------------------------------------------------------------------------------


COMPOSE_WORKERS = {"training": "training-worker", "planning": "planner-worker"}
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"


@dataclass
class ComposeWorkers:
    """The worker containers of a Compose project, through the Docker API."""

    client: Any
    project: str | None = None
    services: Mapping[str, str] = field(default_factory=lambda: dict(COMPOSE_WORKERS))
    restart_delay_s: float = 1.0
    _stats: dict[str, WorkerStats] = field(default_factory=dict)

    def _containers(self, kind: str | None, status: str = "running") -> list[Any]:
        out = []
        for k, service in self.services.items():
            if kind is not None and k != kind:
                continue
            labels = [f"{COMPOSE_SERVICE_LABEL}={service}"]
            if self.project:
                labels.append(f"{COMPOSE_PROJECT_LABEL}={self.project}")
            found = self.client.containers.list(filters={"label": labels, "status": status})
            out += [(k, c) for c in sorted(found, key=lambda c: c.name)]
        return out

    def kinds(self) -> list[str]:
        """Kinds with at least one running worker container."""
        return sorted({k for k, _ in self._containers(None)})

    def kill(self, kind: str | None, pick: float) -> str:
        """SIGKILL one running worker container and start it again after the restart delay."""
        live = self._containers(kind)
        if not live:
            raise WorkerError(f"no running {kind or 'worker'} container to kill")
        k, container = live[min(len(live) - 1, int(pick * len(live)))]
        container.kill(signal="SIGKILL")
        stats = self._stats.setdefault(k, WorkerStats())
        stats.killed += 1
        threading.Timer(self.restart_delay_s, self._restart, args=(k, container)).start()
        return f"{k} container {container.name}"

    def _restart(self, kind: str, container: Any) -> None:
        try:
            container.reload()
            if container.status != "running":
                container.start()
            self._stats.setdefault(kind, WorkerStats()).restarts += 1
        except Exception:
            log.exception("could not restart container %s", getattr(container, "name", "?"))

    def freeze(self, kind: str | None, frozen: bool) -> list[str]:
        """Pause (or unpause) every worker container of `kind`."""
        out = []
        for k, container in self._containers(kind, status="running" if frozen else "paused"):
            (container.pause if frozen else container.unpause)()
            out.append(f"{k} container {container.name}")
        return out

    def pause_one(self, kind: str | None, pick: float) -> tuple[str, Callable[[], None]]:
        """Pause one running worker container; the returned callable unpauses it."""
        live = self._containers(kind)
        if not live:
            raise WorkerError(f"no running {kind or 'worker'} container to pause")
        k, container = live[min(len(live) - 1, int(pick * len(live)))]
        container.pause()
        return f"{k} container {container.name}", container.unpause

    def stats(self) -> dict[str, WorkerStats]:
        """Kills and restarts per kind."""
        return {k: v.model_copy() for k, v in self._stats.items()}
