"""The web UI's plumbing: templates and filters, who is signed in, page rendering, and errors as HTML pages.

Pages call the same `RentalService` handlers as the JSON API, with the actor taken from the session cookie
instead of the Authorization header, so every rule and every permission is the service layer's. What the
service refuses comes back here as an exception, and `WebRoute` turns it into what a browser expects: a
sign-in redirect (401), an error page (403, 404) or, after a form post, a flash message on the page the
form came from (409, bad values).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from rental_manager.domain.errors import ForbiddenMove, InvalidTransition, InvalidValue, RuleViolation
from rental_manager.domain.model import Role
from rental_manager.entrypoints.web.session import (
    PREFIX,
    SESSION_COOKIE,
    CsrfRejected,
    LoginRequired,
    back_target,
    checked_form,
    csrf_token,
    end_session,
    finish,
    flash,
    take_flashes,
)
from rental_manager.service import users
from rental_manager.service.errors import Conflict, Forbidden, NotFound, Unauthorized
from rental_manager.service.facade import RentalService
from rental_manager.service.read_models import UserRecord
from rental_manager.service.schemas import Page
from rental_manager.service.unit import Actor

HERE = Path(__file__).resolve().parent
CURRENCY = "€"

templates = Jinja2Templates(directory=HERE / "templates")


def money(cents: int | None) -> str:
    """Integer cents as an amount with the currency sign, e.g. €1,234.50."""
    if cents is None:
        return "—"
    sign = "-" if cents < 0 else ""
    units, rest = divmod(abs(int(cents)), 100)
    return f"{sign}{CURRENCY}{units:,}.{rest:02d}"


def major(cents: int | None) -> str:
    """Integer cents as a plain decimal for an input field, e.g. 1234.50."""
    if cents is None:
        return ""
    units, rest = divmod(int(cents), 100)
    return f"{units}.{rest:02d}"


def day(value: date | datetime | None) -> str:
    """A date as 3 Mar 2026."""
    if value is None:
        return "—"
    return f"{value.day} {value:%b %Y}"


def moment(value: datetime | None) -> str:
    """A time as 3 Mar 2026, 14:30 UTC."""
    if value is None:
        return "—"
    return f"{value.day} {value:%b %Y, %H:%M} UTC"


def label(value: object) -> str:
    """An enum or snake_case value as words: in_progress -> In progress."""
    text = str(getattr(value, "value", value)).replace("_", " ")
    return text[:1].upper() + text[1:]


templates.env.filters.update(money=money, major=major, day=day, moment=moment, label=label)


def get_service(request: Request) -> RentalService:
    """The service layer the app was built with."""
    service: RentalService = request.app.state.service
    return service


Svc = Annotated[RentalService, Depends(get_service)]


def viewer(request: Request, svc: Svc) -> Actor | None:
    """The signed-in user from the session cookie, or None (a stale cookie is dropped, not an error)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        actor = svc.actor(token)
        me = svc.run(users.me, actor)
    except Unauthorized:
        end_session(request)
        return None
    request.state.actor, request.state.me = actor, me
    return actor


def signed_in(actor: Annotated[Actor | None, Depends(viewer)]) -> Actor:
    """The signed-in user; pages that need one send anonymous visitors to the login form."""
    if actor is None:
        raise LoginRequired
    return actor


async def posted(request: Request, svc: Svc) -> dict[str, str]:
    """The fields of a form post that passed the origin and CSRF checks."""
    return await checked_form(request, svc.credentials.secret)


Viewer = Annotated[Actor | None, Depends(viewer)]
User = Annotated[Actor, Depends(signed_in)]
Form = Annotated[dict[str, str], Depends(posted)]


def home_of(actor: Actor | None) -> str:
    """Where a user lands after signing in."""
    if actor is None or actor.role is Role.TENANT:
        return f"{PREFIX}/houses"
    return f"{PREFIX}/dashboard"


NAV: dict[str | None, list[tuple[str, str]]] = {
    None: [("houses", "Browse homes")],
    Role.TENANT.value: [
        ("houses", "Browse homes"),
        ("favourites", "Saved"),
        ("viewings", "Viewings"),
        ("applications", "Applications"),
        ("leases", "Leases"),
        ("bills", "Bills"),
        ("maintenance", "Repairs"),
        ("announcements", "Notices"),
    ],
    Role.LANDLORD.value: [
        ("dashboard", "Dashboard"),
        ("my-houses", "My houses"),
        ("applications", "Applications"),
        ("viewings", "Viewings"),
        ("leases", "Leases"),
        ("bills", "Bills"),
        ("maintenance", "Maintenance"),
        ("announcements", "Notices"),
        ("houses", "Browse"),
    ],
    Role.ADMIN.value: [
        ("dashboard", "Dashboard"),
        ("my-houses", "Houses"),
        ("applications", "Applications"),
        ("leases", "Leases"),
        ("bills", "Bills"),
        ("maintenance", "Maintenance"),
        ("announcements", "Notices"),
        ("houses", "Browse"),
    ],
}


def render(request: Request, name: str, context: Mapping[str, Any] | None = None, status: int = 200) -> Response:
    """A page from `templates/<name>`, with the layout's context: user, navigation, flashes, CSRF token."""
    svc = get_service(request)
    actor: Actor | None = getattr(request.state, "actor", None)
    me: UserRecord | None = getattr(request.state, "me", None)
    section = request.url.path.removeprefix(PREFIX + "/").split("/", 1)[0]
    full = {
        "actor": actor,
        "me": me,
        "role": actor.role.value if actor else None,
        "nav": NAV[actor.role.value if actor else None],
        "section": section,
        "flashes": take_flashes(request),
        "csrf": csrf_token(request, svc.credentials.secret),
        "today": svc.today(),
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "prefix": PREFIX,
        **(context or {}),
    }
    return finish(request, templates.TemplateResponse(request, name, full, status_code=status))


def redirect(request: Request, url: str, kind: str | None = None, message: str | None = None) -> Response:
    """303 to `url` (Post/Redirect/Get), optionally with a flash message for the page there."""
    if message:
        flash(request, kind or "info", message)
    return finish(request, RedirectResponse(url, status_code=303))


def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    """The error page, in the layout, with the status it reports."""
    return render(request, "error.html", {"status": status, "title": title, "detail": detail}, status)


def pages(request: Request, page: Page[Any]) -> list[tuple[str, str | None]]:
    """Pagination links for a page of results: (label, url or None for the current/ellipsis)."""
    count = max(1, -(-page.total // page.page_size))
    if count == 1:
        return []
    shown = sorted({1, count, *range(max(1, page.page - 2), min(count, page.page + 2) + 1)})
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
    links: list[tuple[str, str | None]] = []
    if page.page > 1:
        links.append(("‹ Prev", f"{request.url.path}?{urlencode([*params, ('page', page.page - 1)])}"))
    previous = 0
    for n in shown:
        if n - previous > 1:
            links.append(("…", None))
        url = None if n == page.page else f"{request.url.path}?{urlencode([*params, ('page', n)])}"
        links.append((str(n), url))
        previous = n
    if page.page < count:
        links.append(("Next ›", f"{request.url.path}?{urlencode([*params, ('page', page.page + 1)])}"))
    return links


def page_number(request: Request) -> int:
    """The `page` query parameter, clamped to something sensible."""
    raw = request.query_params.get("page", "1")
    return min(max(int(raw), 1), 10_000) if raw.isdigit() else 1


def ids(values: Iterable[uuid.UUID | None]) -> set[uuid.UUID]:
    """The distinct non-empty ids among `values`."""
    return {v for v in values if v is not None}


Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


class WebRoute(APIRoute):
    """A route whose service-layer refusals become browser answers instead of problem+json bodies."""

    def get_route_handler(self) -> Endpoint:
        """Wrap the endpoint so domain and access errors render as pages, redirects or flashes."""
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except (LoginRequired, Unauthorized):
                if request.method == "GET":
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                else:
                    target = back_target(request)
                if request.cookies.get(SESSION_COOKIE):
                    end_session(request)
                return redirect(
                    request, f"{PREFIX}/login?next={quote(target, safe='/')}", "info", "Please sign in to continue."
                )
            except CsrfRejected as exc:
                return error_page(request, 403, "Request refused", str(exc))
            except (Forbidden, ForbiddenMove) as exc:
                return error_page(request, 403, "Not allowed", str(exc) or "You may not open this page.")
            except NotFound as exc:
                return error_page(request, 404, "Not found", str(exc))
            except RequestValidationError:
                return error_page(request, 404, "Not found", "There is no such page.")
            except (Conflict, InvalidTransition, RuleViolation, InvalidValue) as exc:
                if request.method == "POST":
                    form = await request.form()
                    fields = {k: v for k, v in form.items() if isinstance(v, str)}
                    return redirect(request, back_target(request, fields), "error", str(exc))
                return error_page(request, 409, "Conflict", str(exc))

        return guarded


def markup(svg: str) -> Markup:
    """Trusted, server-generated SVG for a template."""
    return Markup(svg)  # drawn by matplotlib from numbers and fixed labels, never from user text
