"""Readiness checks every service's `/readyz` runs: the broker answers, the database answers."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable

from sqlalchemy import Engine, text

from quartet_shared.settings import KernelSettings


def database_ready(engine: Engine) -> Callable[[], bool]:
    """A readiness check that runs SELECT 1."""

    def check() -> bool:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True

    return check


def kafka_ready(settings: KernelSettings, timeout_s: float = 1.0) -> Callable[[], bool]:
    """A readiness check: some bootstrap server accepts a TCP connection within `timeout_s`."""

    def check() -> bool:
        for server in settings.kafka_bootstrap_servers.split(","):
            host, _, port = server.strip().rpartition(":")
            with contextlib.suppress(OSError), socket.create_connection((host.strip("[]"), int(port)), timeout_s):
                return True
        return False

    return check
