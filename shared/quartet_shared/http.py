"""The FastAPI app factory: health, readiness, metrics and RFC 9457 problem bodies for every error."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from quartet_shared.validation import error_fields

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
Check = Callable[[], bool]


class Problem(Exception):
    """An error that becomes an RFC 9457 problem response."""

    def __init__(self, status: int, title: str, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.extensions = extensions


def problem_response(
    request: Request, status: int, title: str, detail: str | None = None, **extensions: Any
) -> JSONResponse:
    """A problem+json response for `request`."""
    body: dict[str, Any] = {
        "type": f"https://quartet.dev/problems/{HTTPStatus(status).phrase.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "instance": str(request.url.path),
    }
    if detail:
        body["detail"] = detail
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def create_app(
    *,
    title: str,
    version: str = "0.1.0",
    readiness: Mapping[str, Check] | None = None,
    description: str = "",
    lifespan: Any = None,
) -> FastAPI:
    """A FastAPI app with /healthz, /readyz, /metrics and problem+json error handling."""
    app = FastAPI(title=title, version=version, description=description, lifespan=lifespan)
    checks = dict(readiness or {})

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Alive: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz(request: Request) -> Response:
        """Ready: each dependency (Kafka, Redis, database) is reachable."""
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                results[name] = "ok" if check() else "unreachable"
            except Exception as exc:  # a readiness probe must answer, whatever the dependency does
                results[name] = f"unreachable: {type(exc).__name__}"
        if all(v == "ok" for v in results.values()):
            return JSONResponse({"status": "ready", "checks": results})
        return problem_response(request, 503, "Not ready", "a dependency is unreachable", checks=results)

    @app.get("/metrics", tags=["ops"])
    def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc.status, exc.title, exc.detail, **exc.extensions)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = error_fields(exc.errors(), exc.body)
        fields = ", ".join(e["field"] for e in errors)
        return problem_response(request, 422, "Invalid request", f"invalid fields: {fields}", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = HTTPStatus(exc.status_code).phrase
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
        return problem_response(request, exc.status_code, title, detail)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem_response(request, 500, "Internal Server Error", "an unexpected error was logged")

    return app
