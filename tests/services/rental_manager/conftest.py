"""Fixtures for the rental-manager tests: one private PostgreSQL database for the session, migrated once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from quartet_shared.settings import KernelSettings
from rental_manager.bootstrap import Rental, bootstrap
from rental_manager.entrypoints.api import create_api
from rental_manager.settings import RentalSettings

from tests.support.rental import Cast, cast, private_database, rental_settings
from tests.support.servers import Servers


@pytest.fixture(scope="session")
def rental_database(servers: Servers) -> Iterator[str]:
    """A database of its own on the session's PostgreSQL, at the latest migration."""
    with private_database(servers.database_url) as url:
        yield url


@pytest.fixture
def rental_config(settings: KernelSettings, rental_database: str, unique: str) -> RentalSettings:
    """Rental settings on the test servers with topics of this test's own."""
    return rental_settings(settings, rental_database, unique)


@pytest.fixture
def rental(rental_config: RentalSettings) -> Iterator[Rental]:
    """The wired service (no relay or worker running unless a test starts them)."""
    wired = bootstrap(rental_config)
    try:
        yield wired
    finally:
        wired.close()


@pytest.fixture
def client(rental: Rental) -> Iterator[TestClient]:
    """An HTTP client on the API (its lifespan starts nothing in the background)."""
    with TestClient(create_api(rental)) as test_client:
        yield test_client


@pytest.fixture
def people(rental: Rental) -> Cast:
    """An admin, two landlords and two tenants."""
    return cast(rental)


@pytest.fixture
def own_database(servers: Servers) -> Iterator[str]:
    """A database for this test alone (for tests that relay the whole outbox or count every row)."""
    with private_database(servers.database_url) as url:
        yield url


@pytest.fixture
def isolated(settings: KernelSettings, own_database: str, unique: str) -> Iterator[Rental]:
    """The wired service on a database of its own."""
    wired = bootstrap(rental_settings(settings, own_database, unique))
    try:
        yield wired
    finally:
        wired.close()
