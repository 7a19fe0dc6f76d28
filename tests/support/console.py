"""The console's forms as a signed-in browser sends them (with the CSRF token its pages carry), and its settings
for tests on fakes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from simulator.settings import SimulatorSettings

from tests.support.auth import API_KEYS

NOWHERE = "http://127.0.0.1:1"


def offline_settings(runs_dir: Path) -> SimulatorSettings:
    """A console's settings with the test keys, no broker and no job service answering: fakes stand in for them."""
    return SimulatorSettings(
        runs_dir=runs_dir,
        kafka_bootstrap_servers="127.0.0.1:1",
        api_keys=API_KEYS,
        training_url=NOWHERE,
        planner_url=NOWHERE,
        rental_url=NOWHERE,
    )


def page_csrf_token(client: TestClient, path: str = "/console/chaos") -> str:
    """The CSRF token in the forms of the page at `path`."""
    found = re.search(r'name="csrf_token" value="([^"]*)"', client.get(path).text)
    assert found is not None and found.group(1), f"{path} has no form with a CSRF token"
    return found.group(1)


def post_form(client: TestClient, path: str, data: dict[str, str], **kwargs: Any) -> httpx.Response:
    """POST `data` to `path` as the console's own form would, its page's CSRF token included."""
    return client.post(path, data={**data, "csrf_token": page_csrf_token(client)}, **kwargs)
