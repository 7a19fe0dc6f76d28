"""The servers `make up` started on this host, as the simulator's fault target.

The simulator is a runtime service and must not import the tooling; where the tooling is installed (a developer's
host, never an image) it finds these functions through the `quartet.servers` entry points instead.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from quartet_tools.infra import STATE_DIR, Stack, docker_available


def compose_running() -> bool:
    """True when `make up` started the servers with Compose (its marker file is present and Docker answers)."""
    return (STATE_DIR / "docker").exists() and docker_available()


def native_control(kafka_bootstrap: str) -> Stack | None:
    """The native stack `make up` started, if `kafka_bootstrap` points at its broker."""
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
