"""The FastAPI app factory: health, readiness, metrics and RFC 9457 problem bodies for every error.

Every app it makes also refuses what would otherwise reach a handler only to crash it or cost it: a NUL in the
path or query (PostgreSQL and file paths cannot hold one), a body over the request limit (413 before parsing),
a body that is not JSON on a JSON route (415) and JSON that does not parse (400 naming line and column). Its
OpenAPI document declares those problem bodies on every operation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict
from quartet_contracts.validation import error_fields
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quartet_shared.settings import DEFAULT_MAX_REQUEST_BYTES
from quartet_shared.tracing import instrument_app

if TYPE_CHECKING:
    from quartet_shared.auth import ApiKeys

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
Check = Callable[[], bool]

# How much of a client's Content-Type a problem body repeats.
_ECHO_CHARS = 100


class FieldProblem(BaseModel):
    """One field at fault and what is wrong with it."""

    # Open: a service may say more, e.g. the simulator names a scenario's file, line and column (or null).
    model_config = ConfigDict(extra="allow")

    field: str
    message: str


class ProblemDetails(BaseModel):
    """An RFC 9457 problem body; `errors` lists `{field, message}` pairs when fields are at fault."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldProblem] | None = None


PROBLEM_STATUSES = (400, 401, 403, 404, 409, 413, 415, 422, 429)
PROBLEM_RESPONSES: dict[int, dict[str, Any]] = {
    status: {
        "description": HTTPStatus(status).phrase,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
    }
    for status in PROBLEM_STATUSES
}


class Problem(Exception):
    """An error that becomes an RFC 9457 problem response."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        # Response headers the status calls for (WWW-Authenticate on 401, Retry-After on 429, Allow on 405).
        self.headers = dict(headers or {})
        self.extensions = extensions


def problem_response(
    request: Request,
    status: int,
    title: str,
    detail: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem+json response for `request`, with `headers` set on the response."""
    body: dict[str, Any] = {
        "type": f"https://quartet.dev/problems/{HTTPStatus(status).phrase.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "instance": str(request.url.path),
    }
    if detail:
        body["detail"] = detail
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {}))


class NulGuard:
    """ASGI middleware: a NUL in the path or query is a 400 problem before any route sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on unless its path or query holds a NUL."""
        if scope["type"] == "http":
            where = _nul_in(scope)
            if where is not None:
                request = Request(scope, receive)
                message = f"the {where} contains a NUL character (%00), which no name or id may hold"
                errors = [{"field": where, "message": message}]
                await problem_response(request, 400, "Bad Request", message, errors=errors)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyTooLarge(StarletteHTTPException):
    """The request body passed its limit while streaming in; FastAPI re-raises it to the 413 handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit:,} bytes")


class BodyLimit:
    """ASGI middleware: a body over its path's limit is a 413 problem, before any of it is parsed.

    A declared Content-Length is judged before the route runs; a chunked body is counted as it streams
    in and refused once past the limit, so no more than the limit is ever held. Starlette's own limiter
    answers a declared overrun in plain text whatever the app says, hence this one.
    """

    def __init__(self, app: ASGIApp, limit: int, per_path: Mapping[str, int]) -> None:
        self.app = app
        self.limit = limit
        self.per_path = per_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse or count the body, then pass the request on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope["path"], self.limit)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            exc = BodyTooLarge(limit)
            response = problem_response(Request(scope), 413, "Content Too Large", str(exc.detail))
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


def allow_larger_bodies(app: FastAPI, path: str, limit: int) -> None:
    """Give requests to exactly `path` their own body limit (an upload route's), instead of the app's."""
    per_path: dict[str, int] = app.state.body_limits
    per_path[path] = limit


async def refuse_nul_text(request: Request) -> None:
    """Refuse (422, naming the field) a JSON body whose text holds a NUL: no database column can."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method not in ("POST", "PUT", "PATCH") or not (media == "application/json" or media.endswith("+json")):
        return
    raw = await request.body()
    if b"\\u0000" not in raw:  # JSON can spell a NUL only as this escape
        return
    try:
        field = _nul_field(await request.json())
    except (ValueError, RecursionError):
        return  # not JSON (or nested past parsing): the route's own parsing answers that
    if field is not None:
        message = "contains a NUL character (\\u0000), which no text may hold"
        raise Problem(422, "Invalid request", f"invalid fields: {field}", errors=[{"field": field, "message": message}])


def _nul_field(document: Any) -> str | None:
    """The dotted path of the first string (or key) in a JSON document that holds a NUL."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return path or "body"
        elif isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                if "\x00" in key:
                    return child
                stack.append((child, item))
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}" if path else str(i), item) for i, item in enumerate(value))
    return None


def _nul_in(scope: Scope) -> str | None:
    if "\x00" in scope.get("path", ""):
        return "path"
    if b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
        return "query"
    return None


def create_app(
    *,
    title: str,
    version: str = "0.1.0",
    readiness: Mapping[str, Check] | None = None,
    description: str = "",
    lifespan: Any = None,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    api_keys: ApiKeys | None = None,
) -> FastAPI:
    """A FastAPI app with /healthz, /readyz, /metrics, problem+json errors and a request-body limit.

    `api_keys` are the keys its `require_scope` routes accept; none: every such route answers 401.
    """
    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=lifespan,
        dependencies=[Depends(refuse_nul_text)],
    )
    app.state.api_keys = api_keys
    app.state.body_limits = {}
    app.add_middleware(BodyLimit, limit=max_request_bytes, per_path=app.state.body_limits)
    app.add_middleware(NulGuard)
    _declare_problems(app)
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

    # Declared as text/plain so the OpenAPI document says what the Prometheus exposition format is.
    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    _install_handlers(app)
    instrument_app(app)
    return app


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc.status, exc.title, exc.detail, headers=exc.headers, **exc.extensions)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            return _json_syntax_problem(request, first, exc.body)
        if isinstance(exc.body, bytes) and exc.body:
            # FastAPI hands a JSON route the raw bytes when the media type is not JSON.
            media = request.headers.get("content-type", "a body without Content-Type")[:_ECHO_CHARS]
            message = f"send the body as application/json, not {media}"
            errors = [{"field": "body", "message": message}]
            return problem_response(request, 415, "Unsupported Media Type", message, errors=errors)
        errors = error_fields(exc.errors(), exc.body)
        fields = ", ".join(e["field"] for e in errors)
        return problem_response(request, 422, "Invalid request", f"invalid fields: {fields}", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = HTTPStatus(exc.status_code).phrase
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
        response = problem_response(request, exc.status_code, title, detail)
        response.headers.update(exc.headers or {})  # 405's Allow, 401's WWW-Authenticate
        if exc.status_code == 405:
            response.headers["Allow"] = _allowed_methods(request)
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem_response(request, 500, "Internal Server Error", "an unexpected error was logged")


def _allowed_methods(request: Request) -> str:
    """Every method the path's routes take (FastAPI makes a route per method; Starlette's 405 names one's)."""
    # Asked of each top-level route through matches(), which included routers answer for their own routes too.
    routes = [r for r in request.app.router.routes if isinstance(r, BaseRoute)]
    allowed = [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    ]
    return ", ".join(allowed)


def _json_syntax_problem(request: Request, error: Mapping[str, Any], doc: Any) -> JSONResponse:
    """400 naming the line and column where the JSON body stops parsing."""
    loc = list(error.get("loc") or ())
    pos = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
    text = doc if isinstance(doc, str) else ""
    line = text.count("\n", 0, pos) + 1
    column = pos - text.rfind("\n", 0, pos)
    reason = str((error.get("ctx") or {}).get("error") or "invalid JSON")
    message = f"the body is not valid JSON: {reason} at line {line}, column {column}"
    errors = [{"field": "body", "message": message}]
    return problem_response(request, 400, "Malformed JSON", message, line=line, column=column, errors=errors)


def _declare_problems(app: FastAPI) -> None:
    """Make the app's OpenAPI document declare the problem bodies every operation may answer."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        problem = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(problem.pop("$defs", {}))
        components["ProblemDetails"] = problem
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                if not isinstance(operation, dict):
                    continue
                responses = operation.setdefault("responses", {})
                for status, declared in PROBLEM_RESPONSES.items():
                    # Kept: a route's own description; replaced: FastAPI's plain-JSON 422, never sent.
                    description = responses.get(str(status), {}).get("description") or declared["description"]
                    responses[str(status)] = {**declared, "description": description}
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend its schema
