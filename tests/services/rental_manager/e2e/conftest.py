"""End-to-end fixtures: `rental-manager all` as a real process on a free port, and Debian's Chromium driven by
Playwright (never Playwright's own browser downloads; the `chromium` fixture is the root conftest's). A failing
test leaves a screenshot of every page it had open in a temporary directory, named in the failure report."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from quartet_tools.harness.rental import rental_manager_process

from tests.support.servers import Servers
from tests.support.web import ADMIN_PASSWORD, Browsers, RentalServer


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="module")
def rental_server(
    servers: Servers, rental_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RentalServer]:
    """The rental manager's API, relay and worker in one process, on the session's Kafka, Redis and PostgreSQL."""
    unique = uuid.uuid4().hex[:10]
    workdir = tmp_path_factory.mktemp("rental-e2e")
    admin = f"admin-{unique}@example.com"
    with rental_manager_process(
        servers.kafka_bootstrap,
        servers.redis_url,
        rental_database,
        workdir,
        f"e2e{unique}.",
        instance_id=unique,
        admin_email=admin,
        admin_password=ADMIN_PASSWORD,
    ) as base:
        yield RentalServer(base, admin, workdir / "rental-manager.log")


@pytest.fixture
def browsers(chromium: Browser, rental_server: RentalServer, request: pytest.FixtureRequest) -> Iterator[Browsers]:
    """Browser profiles for one test; on failure, a screenshot of each into a temporary directory."""
    made = Browsers(chromium, rental_server.base)
    try:
        yield made
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed and made.pages:
            shots = Path(tempfile.mkdtemp(prefix="rental-e2e-shots-"))
            for name, page in made.pages.items():
                try:
                    page.screenshot(path=str(shots / f"{request.node.name}-{name}.png"), full_page=True)
                except Exception as exc:  # a page that crashed must not hide the others' screenshots
                    print(f"no screenshot of {name}: {exc}")
            print(f"screenshots of the failed test's pages: {shots}")
            print(f"service log: {rental_server.log}")
        for context in made.contexts:
            context.close()
