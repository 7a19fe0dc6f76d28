"""Session fixtures: real Kafka, Redis and PostgreSQL for the integration and fault tests.

Natively started processes by default; containers started through testcontainers when QUARTET_TEST_INFRA is
`containers` (an explicit choice, so a Docker engine that merely answers never changes what a run tests).
Either way the servers are private to the test session, on free ports, so a running `make up` system is never
touched.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from quartet_shared.settings import KernelSettings
from quartet_tools.harness.cluster import ClusterServers
from quartet_tools.harness.processes import print_tail

from tests.support.recovery import Topology
from tests.support.server_guard import refuse_servers_unless_integration
from tests.support.servers import (
    INFRA_VARIABLE,
    ContainerServers,
    NativeServers,
    Servers,
    infra_choice,
    kernel_settings,
)
from tests.support.tracing import recorded_spans

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """A QUARTET_TEST_INFRA that names no way of running the servers stops the run before any test."""
    try:
        infra_choice()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests on the 3-node cluster run last, in their own order, so the session's cluster starts when they
    begin instead of idling beside most of the suite (its three JVMs take about a tenth of a core when idle); the
    trace viewer's just before them, so that `make test`'s background build of the collector has finished."""
    items.sort(key=lambda item: _late(getattr(item, "fixturenames", ())))


def _late(fixtures: Iterable[str]) -> tuple[bool, bool]:
    names = set(fixtures)
    return "kafka_cluster" in names, "trace_viewer" in names


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test that needs a server but is not marked `integration` fails before any server starts."""
    refuse_servers_unless_integration(item)


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    """Kafka, Redis and PostgreSQL for the whole session, stopped at its end."""
    from quartet_tools.infra import docker_available

    if infra_choice() == "containers":
        # Asked for by name: no engine is a failure, never a quiet fall back to the native servers.
        if not docker_available():
            pytest.fail(f"{INFRA_VARIABLE}=containers, but no Docker engine answers (DOCKER_HOST?)", pytrace=False)
        stack: Servers = ContainerServers.start()
    else:
        workdir = Path(tempfile.mkdtemp(prefix="quartet-test-"))
        # The postgres user must be able to reach its data directory under this one.
        workdir.chmod(0o755)
        stack = NativeServers.start(workdir)
    try:
        yield stack
    finally:
        stack.stop()
        if isinstance(stack, NativeServers):
            shutil.rmtree(stack.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[ClusterServers]:
    """A private 3-node Kafka cluster (combined KRaft nodes, RF 3, min ISR 2) for the session's fault tests."""
    workdir = Path(tempfile.mkdtemp(prefix="quartet-cluster-"))
    cluster = ClusterServers.start(workdir)
    try:
        yield cluster
    finally:
        cluster.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def cluster(kafka_cluster: ClusterServers) -> ClusterServers:
    """The session's cluster with all three nodes live: whatever an earlier test killed is back."""
    kafka_cluster.heal()
    return kafka_cluster


@pytest.fixture(params=["one_broker", "three_brokers"])
def topology(request: pytest.FixtureRequest) -> Topology:
    """The session's lone broker, or its 3-node cluster with every node live: a test asking for it runs on both."""
    if request.param == "one_broker":
        servers: Servers = request.getfixturevalue("servers")
        return Topology("one broker", kernel_settings(servers), servers=servers)
    cluster: ClusterServers = request.getfixturevalue("cluster")
    return Topology("three brokers", cluster.settings(), cluster=cluster)


@pytest.fixture
def settings(servers: Servers) -> KernelSettings:
    """Kernel settings pointing at the session's servers, with quick retries and the test API keys."""
    return kernel_settings(servers)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for one test, every finished span kept in memory (ask for it before what it should trace)."""
    with recorded_spans() as exporter:
        yield exporter


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic and group names, so tests never share state."""
    return uuid.uuid4().hex[:10]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test item, for fixtures that act on failures."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(autouse=True)
def broker_log_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """When a test that uses the servers fails, print what the broker logged about groups meanwhile.

    Rebalances and member expiries are the broker's to see; on a CI machine that is gone after the run, this
    is the only record of them.
    """
    if "servers" not in request.fixturenames:
        yield
        return
    servers: Servers = request.getfixturevalue("servers")
    mark = servers.broker_log_mark()
    yield
    report = getattr(request.node, "report_call", None)
    if report is None or not report.failed:
        return
    lines = [line for line in servers.broker_log_since(mark) if " group " in line]
    print_tail("the broker on groups during the test", lines, limit=80)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """The Playwright driver for the browser tests (imported here only when a browser test runs)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    """Debian's headless Chromium (installed by `make test` through `quartet_tools.infra install-tools`)."""
    from quartet_tools.infra import ensure_chromium

    browser = playwright.chromium.launch(executable_path=ensure_chromium(), headless=True)
    try:
        yield browser
    finally:
        browser.close()
