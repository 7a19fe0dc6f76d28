"""The simulator's live console at `/`: the live audit, jobs, and what the system is doing right now."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from simulator.console.feed import LiveFeed
from simulator.console.jobs import JobServices
from simulator.console.system import DeadLetterTools
from simulator.console.system import router as system_router
from simulator.console.views import HERE, LoginRequired, router
from simulator.settings import SimulatorSettings


def mount_console(app: FastAPI, settings: SimulatorSettings, feed: LiveFeed | None = None) -> LiveFeed:
    """Serve the console's pages, stream and static files on `app`; returns its feed (started by the caller)."""
    app.state.console_feed = feed or LiveFeed(settings)
    app.state.console_jobs = JobServices(
        {"training": settings.training_url, "planning": settings.planner_url}, timeout_s=settings.http_timeout_s
    )
    app.state.console_dlq = DeadLetterTools()
    app.include_router(router)
    app.include_router(system_router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")

    @app.exception_handler(LoginRequired)
    async def _login(_request: Request, _exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse("/console/login", status_code=303)

    feed_started: LiveFeed = app.state.console_feed
    return feed_started
