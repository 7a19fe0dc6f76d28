"""The rental manager's web UI: server-rendered pages over the same service layer as the JSON API."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from rental_manager.entrypoints.web.core import HERE
from rental_manager.entrypoints.web.session import PREFIX
from rental_manager.entrypoints.web.views import router


def mount_web(app: FastAPI) -> None:
    """Serve the UI under /ui (pages and static files), kept out of the OpenAPI document."""
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="ui-static")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        """The UI's front page."""
        return RedirectResponse(f"{PREFIX}/", status_code=307)
