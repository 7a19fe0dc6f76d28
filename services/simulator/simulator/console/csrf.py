"""The console's CSRF tokens: every state-changing form carries one, bound to the browser's console cookie.

This is the signed double-submit pattern (OWASP's recommended variant): the token is an HMAC, under a secret
the simulator draws at start, of the cookie the browser signed in with. Another site can make the browser send
the cookie but cannot read it, so it cannot compute the token; the SameSite=Strict cookie is then a second
line, not the only one. One token holds for every page and tab of a sign-in, and a new sign-in, or a restart
of the simulator, makes the old ones worthless (the page then asks to be reloaded).

The sign-in form has no cookie to bind a token to yet, so it is guarded by Fetch Metadata instead: a browser
says in Sec-Fetch-Site where a request came from, and a sign-in posted from another site is refused (that
would sign the browser in with someone else's key). A client that sends no such header is no browser.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated

from fastapi import Depends, Form, Request
from quartet_shared.http import Problem

FIELD = "csrf_token"
COOKIE = "quartet_console"


def new_secret() -> bytes:
    """A fresh signing secret for one run of the console."""
    return secrets.token_bytes(32)


def token_for(secret: bytes, session: str) -> str:
    """The token of the forms of the browser whose console cookie is `session`."""
    return hmac.new(secret, b"quartet-console-csrf\x00" + session.encode(), hashlib.sha256).hexdigest()


def page_token(request: Request) -> str:
    """The token this page's forms send back ("" before sign-in, where the forms change nothing on the server)."""
    session = request.cookies.get(COOKIE)
    return token_for(request.app.state.console_csrf_secret, session) if session else ""


def check_token(request: Request, csrf_token: Annotated[str, Form(max_length=200)] = "") -> None:
    """Refuse a form post whose token is missing or is not this browser's (Problem 403)."""
    session = request.cookies.get(COOKIE)
    if not csrf_token:
        raise Problem(403, "Forbidden", f"the form has no {FIELD}: reload the page and send it again", field=FIELD)
    expected = token_for(request.app.state.console_csrf_secret, session or "")
    if not session or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
        raise Problem(
            403,
            "Forbidden",
            "the form's CSRF token is not this sign-in's: reload the page and send it again",
            field=FIELD,
        )


def check_origin(request: Request) -> None:
    """Refuse a request a browser says another site sent (Problem 403)."""
    site = request.headers.get("sec-fetch-site", "none")
    if site not in ("same-origin", "none"):
        raise Problem(403, "Forbidden", f"this form was sent from another site (Sec-Fetch-Site: {site[:40]})")


CsrfChecked = Depends(check_token)
Checked = Annotated[None, CsrfChecked]
