"""Health, readiness and metrics for processes without an API of their own (workers, relays).

A container or pod runs one role per process; its orchestrator probes `/healthz` and `/readyz` and Prometheus
scrapes `/metrics`. The API role gets these from `create_app`; `ops_server` gives every other role the same
three endpoints, on the service's port, from a background thread while the role runs in the main thread;
`serve` runs an API role itself, with the same uvicorn options for every service.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine

from quartet_shared.cache import ResilientRedis
from quartet_shared.consumer import ConsumerRunner
from quartet_shared.health import database_ready, kafka_ready
from quartet_shared.http import Check, create_app
from quartet_shared.settings import KernelSettings

log = logging.getLogger(__name__)


class OpsServer:
    """The ops endpoints served by uvicorn in a daemon thread."""

    def __init__(self, title: str, host: str, port: int, readiness: Mapping[str, Check] | None = None) -> None:
        app = create_app(title=title, readiness=readiness)
        # No lifespan and no signal handlers: the role in the main thread owns both.
        config = uvicorn.Config(
            app, host=host, port=port, log_config=None, lifespan="off", access_log=False, server_header=False
        )
        self.host, self.port = host, port
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="ops-server", daemon=True)

    def _serve(self) -> None:
        # uvicorn exits (SystemExit) when it cannot bind; it has logged why, and start() reports it.
        with contextlib.suppress(SystemExit):
            self._server.run()

    @property
    def serving(self) -> bool:
        """True while the endpoints answer."""
        return self._server.started and self._thread.is_alive()

    def start(self, timeout_s: float = 10.0) -> bool:
        """Start serving; False (and a warning) when the port cannot be bound, since the role can run without."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._thread.is_alive() and not self._server.started:
            time.sleep(0.02)
        if not self.serving:
            log.warning("ops endpoints not served", extra={"host": self.host, "port": self.port})
            return False
        log.info("ops endpoints served", extra={"host": self.host, "port": self.port})
        return True

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout_s)


@contextmanager
def ops_server(title: str, host: str, port: int, readiness: Mapping[str, Check] | None = None) -> Iterator[OpsServer]:
    """Serve /healthz, /readyz and /metrics on host:port while the block runs."""
    server = OpsServer(title, host, port, readiness)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def serve(app: FastAPI, host: str, port: int) -> None:
    """Serve an API role until SIGTERM (a graceful shutdown), without a `server` header naming the software."""
    uvicorn.run(app, host=host, port=port, log_config=None, timeout_graceful_shutdown=3, server_header=False)


def dependency_checks(
    settings: KernelSettings, redis: ResilientRedis, engine: Engine, runners: Iterable[ConsumerRunner] = ()
) -> dict[str, Check]:
    """The contract's readiness: Kafka, Redis and the database reachable, and each runner able to take records.

    A reachable broker is not a ready worker: until its producer is initialised and its consumer has joined
    its group, it takes no record, so a rollout that trusted the dependencies alone would count it too soon.
    """
    checks: dict[str, Check] = {"kafka": kafka_ready(settings), "redis": redis.ping, "database": database_ready(engine)}
    for runner in runners:
        checks[f"consumer {runner.group}"] = runner.ready
    return checks
