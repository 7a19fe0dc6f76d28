"""The simulator's live console at `/`: the live audit, jobs, dead letters, topology, the chaos panel and the
capacity search."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from simulator.console.capacity import CapacitySearches
from simulator.console.capacity import router as capacity_router
from simulator.console.chaos import Chaos
from simulator.console.chaos import router as chaos_router
from simulator.console.csrf import new_secret
from simulator.console.feed import LiveFeed
from simulator.console.jobs import JobServices
from simulator.console.system import DeadLetterTools
from simulator.console.system import router as system_router
from simulator.console.views import HERE, LoginRequired, router
from simulator.servers import detect_controls
from simulator.settings import SimulatorSettings


@dataclass(frozen=True)
class ConsoleParts:
    """What the console runs beside the app: the feed thread, the chaos panel's workers, the capacity search."""

    feed: LiveFeed
    chaos: Chaos
    capacity: CapacitySearches

    def start(self) -> None:
        """Start the feed."""
        self.feed.start()

    def stop(self) -> None:
        """Stop a capacity search, the console's own workers and the feed."""
        self.capacity.close()
        self.chaos.stop_workers()
        self.feed.stop()


def default_chaos(settings: SimulatorSettings) -> Chaos:
    """The chaos controls of the environment the settings describe, as a run would find them."""
    controls = detect_controls(settings)
    return Chaos(settings, servers=controls.servers, workers=controls.workers, cluster=controls.cluster)


def mount_console(
    app: FastAPI,
    settings: SimulatorSettings,
    feed: LiveFeed | None = None,
    chaos: Chaos | None = None,
    capacity: CapacitySearches | None = None,
) -> ConsoleParts:
    """Serve the console's pages, stream and static files on `app`; the caller starts and stops its parts."""
    parts = ConsoleParts(
        feed or LiveFeed(settings), chaos or default_chaos(settings), capacity or CapacitySearches(settings)
    )
    app.state.console_feed = parts.feed
    app.state.console_chaos = parts.chaos
    app.state.console_capacity = parts.capacity
    app.state.console_dlq = DeadLetterTools()
    app.state.console_csrf_secret = new_secret()
    app.state.console_jobs = JobServices(
        {"training": settings.training_url, "planning": settings.planner_url}, timeout_s=settings.http_timeout_s
    )
    for each in (router, system_router, chaos_router, capacity_router):
        app.include_router(each)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")

    @app.exception_handler(LoginRequired)
    async def _login(_request: Request, _exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse("/console/login", status_code=303)

    return parts
