"""Worker subprocesses for fault tests and benches: start them with the servers' settings, SIGKILL or SIGTERM them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from quartet_shared.settings import KernelSettings

LOG_TAIL = 60


@dataclass
class Workers:
    """Effect-worker processes started by one test or bench; all are killed when it ends.

    `cwd` is where they run: `python -m` finds a module outside the installed packages (a test's own) from there.
    """

    settings: KernelSettings
    logdir: Path
    cwd: Path | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(
        self, *args: str, instance: str = "0", module: str = "quartet_tools.harness.effect_worker"
    ) -> subprocess.Popen[bytes]:
        """Start `python -m MODULE ARGS` (the effect worker unless told) as worker slot `instance`."""
        env = {**worker_environment(self.settings), "QUARTET_INSTANCE_ID": instance}
        log = (self.logdir / f"worker-{len(self.procs)}-{instance}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=self.cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def kill9(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL: no chance to commit, flush or leave the group."""
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def terminate_all(self) -> None:
        """SIGTERM every live worker and wait; SIGKILL the ones that do not go within 30 s.

        Then print the end of each worker's log: pytest shows it when the test failed, and a fault that only
        shows on a CI machine can then be read from the CI output.
        """
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for log in sorted(self.logdir.glob("worker-*.log")):
            print_tail(log.name, log.read_text(errors="replace").splitlines())


def stop(proc: subprocess.Popen[bytes], grace_s: float = 30.0) -> None:
    """SIGTERM `proc` and wait; SIGKILL it if it has not gone within `grace_s` (the contract's 30 s)."""
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def worker_environment(settings: KernelSettings) -> dict[str, str]:
    """The environment of a test's worker process on the servers of `settings` (its slot's instance id apart)."""
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "REDIS_URL": settings.redis_url,
        "DATABASE_URL": settings.database_url or "",
        "QUARTET_SERVICE_NAME": "effect-worker",
        "QUARTET_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "QUARTET_TOPIC_REPLICATION_FACTOR": str(settings.topic_replication_factor),
        "QUARTET_TRANSACTION_TIMEOUT_MS": str(settings.transaction_timeout_ms),
        "QUARTET_RETRY_BACKOFF_BASE_S": str(settings.retry_backoff_base_s),
    }


def print_tail(title: str, lines: list[str], limit: int = LOG_TAIL) -> None:
    """Print the last `limit` lines under a header naming them (pytest shows it for a failed test)."""
    print(f"--- {title}: last {min(len(lines), limit)} of {len(lines)} lines ---")
    print("\n".join(lines[-limit:]))


def answers(proc: subprocess.Popen[bytes], url: str, log_path: Path) -> Callable[[], bool]:
    """A probe for wait_until: True once `url` answers 200; fails at once, with the log's end, if `proc` died."""

    def probe() -> bool:
        assert proc.poll() is None, log_path.read_text(errors="replace")[-3000:]
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return probe
