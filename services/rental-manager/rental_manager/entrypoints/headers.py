"""Security headers on every response of the rental app, pages and JSON alike (the `secure` package applies them).

The UI runs no script at all, so its policy forbids scripts outright. Styles stay `'unsafe-inline'`: the
templates and matplotlib's server-drawn SVG charts carry `style` attributes and a `<style>` element, and a
style cannot run code. House photos are links to wherever the landlord hosts them, hence any http(s) image.
The interactive API docs load Swagger UI's script and style from its CDN with an inline bootstrap script, so
those few pages get a policy of their own that allows exactly that; they show no user-supplied content.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

from secure import ContentSecurityPolicy, ReferrerPolicy, Secure, XContentTypeOptions, XFrameOptions
from secure.middleware import SecureASGIMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

SWAGGER_CDN = "https://cdn.jsdelivr.net"


def _policy(csp: ContentSecurityPolicy) -> Secure:
    return Secure(
        csp=csp.frame_ancestors("'none'").base_uri("'none'").form_action("'self'").object_src("'none'"),
        xcto=XContentTypeOptions(),
        xfo=XFrameOptions().deny(),
        referrer=ReferrerPolicy().strict_origin_when_cross_origin(),
    )


PAGES = _policy(
    ContentSecurityPolicy()
    .default_src("'none'")
    .style_src("'self'", "'unsafe-inline'")
    .img_src("'self'", "data:", "https:", "http:")
)
DOCS = _policy(
    ContentSecurityPolicy()
    .default_src("'none'")
    .script_src("'self'", "'unsafe-inline'", SWAGGER_CDN)
    .style_src("'self'", "'unsafe-inline'", SWAGGER_CDN)
    .img_src("'self'", "data:", "https:")
    .connect_src("'self'")
    .worker_src("blob:")
)


class SecurityHeaders:
    """ASGI middleware: the docs policy on the interactive docs pages, the strict one everywhere else."""

    def __init__(self, app: ASGIApp, docs_paths: frozenset[str]) -> None:
        self._pages = SecureASGIMiddleware(app, secure=PAGES)
        self._docs = SecureASGIMiddleware(app, secure=DOCS)
        self._docs_paths = docs_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chosen = self._docs if scope.get("path") in self._docs_paths else self._pages
        # `secure` types an ASGI message as a plain object; Starlette's mapping is one.
        await chosen(scope, receive, cast("Callable[[object], Awaitable[None]]", send))
