"""The console's forms as a signed-in browser sends them: with the CSRF token its pages carry."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi.testclient import TestClient


def page_csrf_token(client: TestClient, path: str = "/console/chaos") -> str:
    """The CSRF token in the forms of the page at `path`."""
    found = re.search(r'name="csrf_token" value="([^"]*)"', client.get(path).text)
    assert found is not None and found.group(1), f"{path} has no form with a CSRF token"
    return found.group(1)


def post_form(client: TestClient, path: str, data: dict[str, str], **kwargs: Any) -> httpx.Response:
    """POST `data` to `path` as the console's own form would, its page's CSRF token included."""
    return client.post(path, data={**data, "csrf_token": page_csrf_token(client)}, **kwargs)
