"""The simulator's live console at `/`: the live audit, jobs, dead letters, topology and the chaos panel."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from simulator.cluster import ClusterControl
from simulator.console.chaos import Chaos
from simulator.console.chaos import router as chaos_router
from simulator.console.csrf import new_secret
from simulator.console.feed import LiveFeed
from simulator.console.jobs import JobServices
from simulator.console.system import DeadLetterTools
from simulator.console.system import router as system_router
from simulator.console.views import HERE, LoginRequired, router
from simulator.servers import (
    ComposeCluster,
    ServerControl,
    compose_running,
    detect_host_cluster,
    detect_host_workers,
    detect_server_control,
    docker_client,
)
from simulator.settings import SimulatorSettings
from simulator.workers import ComposeWorkers, WorkerControl

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsoleParts:
    """What the console runs beside the app: the feed thread and the chaos panel's workers."""

    feed: LiveFeed
    chaos: Chaos

    def start(self) -> None:
        """Start the feed."""
        self.feed.start()

    def stop(self) -> None:
        """Stop the feed and the console's own workers."""
        self.chaos.stop_workers()
        self.feed.stop()


def default_chaos(settings: SimulatorSettings) -> Chaos:
    """The chaos controls of the environment the settings describe, as a run would find them."""
    servers: ServerControl | None = None
    workers: WorkerControl | None = None
    cluster: ClusterControl | None = None
    try:
        servers = detect_server_control(settings.kafka_bootstrap_servers, settings.infra, settings.compose_project)
        if settings.infra == "compose" or (settings.infra == "auto" and compose_running()):
            workers = ComposeWorkers(docker_client(), settings.compose_project)
            # Compose's cluster has no fault proxies: the panel names that as why it cannot add latency.
            cluster = ComposeCluster(docker_client(), settings.compose_project)
        else:
            workers = detect_host_workers(settings.kafka_bootstrap_servers, settings.infra)
            if settings.cluster_state is not None:
                cluster = detect_host_cluster(settings.cluster_state)
    except Exception as exc:  # the Docker API may be absent; the panel then says what it cannot do
        log.warning("the chaos panel has no control of the servers or workers: %s", exc)
    return Chaos(settings, servers=servers, workers=workers, cluster=cluster)


def mount_console(
    app: FastAPI, settings: SimulatorSettings, feed: LiveFeed | None = None, chaos: Chaos | None = None
) -> ConsoleParts:
    """Serve the console's pages, stream and static files on `app`; the caller starts and stops its parts."""
    parts = ConsoleParts(feed or LiveFeed(settings), chaos or default_chaos(settings))
    app.state.console_feed = parts.feed
    app.state.console_chaos = parts.chaos
    app.state.console_dlq = DeadLetterTools()
    app.state.console_csrf_secret = new_secret()
    app.state.console_jobs = JobServices(
        {"training": settings.training_url, "planning": settings.planner_url}, timeout_s=settings.http_timeout_s
    )
    for each in (router, system_router, chaos_router):
        app.include_router(each)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")

    @app.exception_handler(LoginRequired)
    async def _login(_request: Request, _exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse("/console/login", status_code=303)

    return parts
