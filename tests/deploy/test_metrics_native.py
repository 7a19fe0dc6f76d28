"""`make metrics`'s Prometheus, as a person uses it: Debian's server (unpacked by `make tools-install`) started
natively on a free loopback port scrapes the training service's API and a worker, two real processes on the test
servers; the alert rules evaluate on what it scraped, and the Quartet console shows it, in a real browser too.

The server is quartet_tools.metrics.NativePrometheus, the class `make metrics` runs, scraping and evaluating every
second here rather than every 15 s.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from quartet_shared.net import free_port
from quartet_shared.settings import KernelSettings
from quartet_tools.metrics import CONSOLE, NativePrometheus

from tests.support.effects import wait_until
from tests.support.jobs import service_process

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.integration


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[NativePrometheus]:
    """Debian's Prometheus on a free loopback port, scraping and evaluating every second."""
    server = NativePrometheus("prometheus", free_port(), tmp_path / "prometheus", interval_s=1)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def query(server: NativePrometheus, expr: str) -> list[dict[str, Any]]:
    """An instant query's series."""
    answer = httpx.get(f"{server.url}/api/v1/query", params={"query": expr}, timeout=5)
    answer.raise_for_status()
    result: list[dict[str, Any]] = answer.json()["data"]["result"]
    return result


def no_live_worker(server: NativePrometheus) -> set[str]:
    """The services QuartetJobServiceNoLiveWorker is pending or firing for."""
    alerts = httpx.get(f"{server.url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return {a["labels"]["service"] for a in alerts if a["labels"]["alertname"] == "QuartetJobServiceNoLiveWorker"}


def test_prometheus_scrapes_a_service_evaluates_the_rules_and_the_console_shows_it(
    prometheus: NativePrometheus, settings: KernelSettings, unique: str, tmp_path: Path, chromium: Browser
) -> None:
    env = {"DATABASE_URL": str(settings.database_url)}
    worker_env = {**env, "TRAINING_INSTANCE_ID": f"{unique}-worker"}
    group = f"p{unique}.training.jobs-worker"
    with (
        service_process("training-worker", "TRAINING_", settings, unique, tmp_path / "api", env, role="api") as api,
        service_process(
            "training-worker", "TRAINING_", settings, unique, tmp_path / "worker", worker_env, role="worker"
        ) as worker,
    ):
        ports = [int(process.base.rsplit(":", 1)[1]) for process in (api, worker)]
        # Before the targets: no worker anywhere, so the rule holds for both job services.
        wait_until(lambda: no_live_worker(prometheus) == {"training-worker", "path-planner"}, 30, "both pending")
        prometheus.write_targets([("training-worker", "api", ports[0]), ("training-worker", "worker-1", ports[1])])

        wait_until(lambda: len(query(prometheus, 'up{job="training-worker"} == 1')) == 2, 60, "both scraped")
        live = f'quartet_consumer_up{{group="{group}"}} == 1'
        wait_until(lambda: len(query(prometheus, live)) == 1, 90, f"the worker up in {group}")
        (member,) = query(prometheus, live)
        assert member["metric"]["process"] == "worker-1" and member["metric"]["job"] == "training-worker"
        # The rule now sees training's worker; the planner still has none.
        wait_until(lambda: no_live_worker(prometheus) == {"path-planner"}, 30, "training's alert resolved")

        page = httpx.get(f"{prometheus.url}/{CONSOLE}", timeout=10)
        assert page.status_code == 200, page.text[-2000:]
        assert re.search(rf"<td>{re.escape(group)}</td><td>1</td>", page.text), "its live worker in the table"
        up = r"Processes up</td>\s*<td>\s*<a [^>]*>2</a>\s*/\s*<a [^>]*>2</a>"
        assert re.search(up, page.text), "both targets up, of two"

        browser = chromium.new_page()
        failed: list[str] = []
        browser.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
        browser.on("pageerror", lambda error: failed.append(str(error)))
        # The members graph draws the worker's group: a line of its own (at the right edge of the hour it shows),
        # named in the legend. A console graph draws what its first query found and does not refresh by itself, so
        # a page loaded before the series had a point on the graph's step (the projector's group, up 10 s sooner,
        # was drawn alone once) is loaded again.
        wait_until(lambda: _drawn(browser, f"{prometheus.url}/{CONSOLE}", group), 90, f"{group} in the members graph")
        assert failed == [], "every script and style the console loads is served, and none throws"
        browser.close()


def _drawn(browser: Any, url: str, group: str) -> bool:
    """Load the console; whether its members graph draws a line within a few seconds, with `group` in its legend."""
    browser.goto(url)
    lines = browser.locator("#members svg path.path")
    try:
        lines.first.wait_for(state="attached", timeout=5_000)
    except PlaywrightTimeout:
        return False
    return group in browser.locator("#members .rickshaw_legend").inner_text()
