"""The browser session: the API's own JWT in an HttpOnly cookie, CSRF tokens, and one-shot flash messages.

Signing in through the login form calls the same `RentalService.login` as `POST /auth/token`; the bearer
token it returns is kept in the `rm_session` cookie (HttpOnly, so page scripts cannot read it; SameSite=Lax;
Secure whenever the request came over HTTPS), which expires with the token itself. Every page then resolves
the caller with `RentalService.actor(token)`, exactly like the API's bearer authentication.

Cross-site request forgery is stopped three ways, each enough against an ordinary attacker site:

1. SameSite=Lax: browsers do not attach the session cookie to a POST started by another site.
2. A signed double-submit token: each browser gets a random nonce in the `rm_csrf` cookie, and every form
   carries HMAC(key, nonce | session cookie) in a hidden field. A POST is accepted only when the field matches
   the token recomputed from the cookies it came with. Another site can neither read the cookie nor compute
   the HMAC without the server's key, and binding it to the session means a cookie planted by a sibling
   subdomain (which SameSite does not stop) is useless without the victim's session; it also covers the
   login form itself (login CSRF), which has no session yet.
3. An Origin check: a POST whose Origin (or, lacking one, Referer) names another host is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from urllib.parse import urlsplit

from fastapi import Request, Response
from starlette.datastructures import FormData

SESSION_COOKIE = "rm_session"
CSRF_COOKIE = "rm_csrf"
FLASH_COOKIE = "rm_flash"
CSRF_FIELD = "csrf_token"
PREFIX = "/ui"
FLASH_KINDS = ("success", "info", "warning", "error")


class CsrfRejected(Exception):
    """A state-changing request without a valid CSRF token or from another origin (403)."""


class LoginRequired(Exception):
    """A page that needs a signed-in user was opened without one (redirect to the login form)."""


def secure(request: Request) -> bool:
    """True when the browser reached us over HTTPS (cookies then get the Secure flag)."""
    return request.url.scheme == "https"


def _nonce(request: Request) -> str:
    """This browser's CSRF nonce: from its cookie, or a new one that `finish` will set."""
    existing = getattr(request.state, "csrf_nonce", None) or request.cookies.get(CSRF_COOKIE)
    if existing and len(existing) <= 128:
        request.state.csrf_nonce = existing
        return str(existing)
    fresh = secrets.token_urlsafe(32)
    request.state.csrf_nonce = fresh
    request.state.csrf_new = True
    return fresh


def _sign(key: str, nonce: str, session: str) -> str:
    return hmac.new(key.encode(), f"{nonce}|{session}".encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request, key: str) -> str:
    """The token this browser's forms must send back, bound to its nonce and current session."""
    session = getattr(request.state, "session_token", None)
    if session is None:
        session = request.cookies.get(SESSION_COOKIE, "")
    return _sign(key, _nonce(request), session)


def same_origin(request: Request) -> bool:
    """False if the request's Origin (or Referer) names a host other than the one it was sent to."""
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if not claimed or claimed == "null":
        # Browsers send Origin on every cross-site POST; only same-origin or non-browser requests lack it,
        # and those still need the token.
        return claimed != "null"
    return urlsplit(claimed).netloc == request.headers.get("host", request.url.netloc)


async def checked_form(request: Request, key: str) -> dict[str, str]:
    """The posted form's text fields, after the origin and CSRF checks (CsrfRejected otherwise)."""
    if not same_origin(request):
        raise CsrfRejected("this form was sent from another site")
    form: FormData = await request.form()
    sent = form.get(CSRF_FIELD)
    nonce = request.cookies.get(CSRF_COOKIE)
    if not isinstance(sent, str) or not nonce:
        raise CsrfRejected("the form's security token is missing; reload the page and try again")
    expected = _sign(key, nonce, request.cookies.get(SESSION_COOKIE, ""))
    if not hmac.compare_digest(sent, expected):
        raise CsrfRejected("the form's security token does not match; reload the page and try again")
    return {name: value.strip() for name, value in form.multi_items() if isinstance(value, str)}


def flash(request: Request, kind: str, message: str) -> None:
    """Queue a message for the next page this browser sees."""
    queued: list[tuple[str, str]] = getattr(request.state, "flash_out", [])
    queued.append((kind if kind in FLASH_KINDS else "info", message[:500]))
    request.state.flash_out = queued


def take_flashes(request: Request) -> list[tuple[str, str]]:
    """The messages queued for this page (read once: `finish` clears the cookie)."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return []
    request.state.flash_taken = True
    try:
        items = json.loads(base64.urlsafe_b64decode(raw.encode()))
        return [(str(k) if k in FLASH_KINDS else "info", str(m)[:500]) for k, m in items][:5]
    except (ValueError, TypeError):
        return []


def start_session(request: Request, token: str, max_age: int) -> None:
    """Remember a freshly issued access token for `finish` to store (and re-key the CSRF token to it)."""
    request.state.session_token = token
    request.state.session_max_age = max_age


def end_session(request: Request) -> None:
    """Forget the session on this response."""
    request.state.session_token = ""
    request.state.session_max_age = 0


def finish(request: Request, response: Response) -> Response:
    """Write the cookies this request changed: session, CSRF nonce and flash messages."""
    https = secure(request)
    token = getattr(request.state, "session_token", None)
    if token:
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int(request.state.session_max_age),
            path="/",
            httponly=True,
            samesite="lax",
            secure=https,
        )
    elif token == "" or getattr(request.state, "drop_session", False):
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=https)
    if getattr(request.state, "csrf_new", False):
        response.set_cookie(
            CSRF_COOKIE, request.state.csrf_nonce, path="/", httponly=True, samesite="lax", secure=https
        )
    queued = getattr(request.state, "flash_out", None)
    if queued:
        payload = base64.urlsafe_b64encode(json.dumps(queued).encode()).decode()
        response.set_cookie(
            FLASH_COOKIE, payload, max_age=120, path=PREFIX, httponly=True, samesite="lax", secure=https
        )
    elif getattr(request.state, "flash_taken", False):
        response.delete_cookie(FLASH_COOKIE, path=PREFIX, httponly=True, samesite="lax", secure=https)
    return response


def local_target(value: str | None, default: str = PREFIX + "/") -> str:
    """A redirect target limited to this UI's own pages (no open redirects)."""
    if not value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith(PREFIX) or "\\" in value:
        return default
    return value


def back_target(request: Request, form: Mapping[str, str] | None = None) -> str:
    """Where a failed POST returns to: the form's `next`, else the same-origin Referer, else the home page."""
    if form and form.get("next"):
        return local_target(form["next"])
    referer = request.headers.get("referer")
    if referer and urlsplit(referer).netloc == request.headers.get("host", request.url.netloc):
        parts = urlsplit(referer)
        return local_target(parts.path + (f"?{parts.query}" if parts.query else ""))
    return PREFIX + "/"
