"""The console's forms as a signed-in browser sends them (with the CSRF token its pages carry), its settings for
tests on fakes, and its app built on them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from simulator.api import RunManager, create_api
from simulator.console.capacity import CapacitySearches
from simulator.console.chaos import Chaos
from simulator.console.feed import LiveFeed
from simulator.settings import SimulatorSettings

from tests.services.simulator.fakes import FakeSimulation
from tests.support.auth import ADMIN_KEY, API_KEYS

NOWHERE = "http://127.0.0.1:1"
CONSOLE_URL = "http://127.0.0.1:8004"


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


@contextmanager
def offline_console(
    settings: SimulatorSettings,
    made: list[FakeSimulation],
    *,
    finish_at_once: bool = False,
    chaos: Chaos | None = None,
    capacity: CapacitySearches | None = None,
) -> Iterator[TestClient]:
    """A client of the console's app on fakes: each run a FakeSimulation in runs_dir/runN, appended to `made` and
    finished at once or when the test sets its `release`; a live feed that sees Kafka down and ticks hourly."""

    def factory(_settings: SimulatorSettings, _scenario: Any) -> Any:  # a Simulation's stand-in
        made.append(FakeSimulation(settings.runs_dir / f"run{len(made)}", f"run{len(made)}"))
        if finish_at_once:
            made[-1].release.set()
        return made[-1]

    feed = LiveFeed(settings, interval_s=3600, kafka_check=lambda _s: "down", redis_check=lambda _u: None)
    app = create_api(settings, RunManager(settings, factory), feed=feed, chaos=chaos, capacity=capacity)
    with TestClient(app, base_url=CONSOLE_URL) as client:
        yield client


def sign_in(client: TestClient, key: str = ADMIN_KEY) -> None:
    """Sign in to the console with `key` (the admin's unless given)."""
    assert client.post("/console/login", data={"api_key": key}, follow_redirects=False).status_code == 303
