"""Fuzzing a real `rental-manager all` process: schemathesis over its OpenAPI document and the hostile corpus.

The process runs on a database of its own holding one world of users, houses, leases and bills; every
generated request is sent as an admin, a landlord and a tenant (each logged in through the process's own
POST /auth/token) and anonymously, and once more aimed at things that exist, so authorised paths and the
handlers behind the 404s are exercised too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from quartet_tools.harness.rental import rental_manager_process
from rental_manager.bootstrap import bootstrap

from tests.support.fuzz import fuzz_service
from tests.support.hostile import RENTAL, Hostile, assert_nul_refused_everywhere, assert_refused, corpus_for
from tests.support.rental import PASSWORD, World, build_world, cast, private_database, rental_settings
from tests.support.servers import Servers, kernel_settings

pytestmark = pytest.mark.integration

EXAMPLES = 8


@dataclass(frozen=True)
class RentalUnderFuzz:
    """The running process, the world in its database, and bearer headers per role from its own login."""

    base: str
    world: World
    admin: dict[str, str]
    landlord: dict[str, str]
    tenant: dict[str, str]


def login(base: str, email: str) -> dict[str, str]:
    """Bearer headers from the process's OAuth2 password flow."""
    answer = httpx.post(f"{base}/auth/token", data={"username": email, "password": PASSWORD}, timeout=30)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


@pytest.fixture(scope="module")
def rental(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RentalUnderFuzz]:
    """`rental-manager all` on a free loopback port and a database of its own, with the world built in it."""
    unique = uuid.uuid4().hex[:10]
    workdir = tmp_path_factory.mktemp("rental-fuzz")
    with private_database(servers.database_url) as url:
        wired = bootstrap(rental_settings(kernel_settings(servers), url, unique))
        try:
            world = build_world(wired, cast(wired))
        finally:
            wired.close()
        prefix = f"r{unique}."
        with rental_manager_process(servers.kafka_bootstrap, servers.redis_url, url, workdir, prefix) as base:
            people = world.admin, world.l1, world.t1
            yield RentalUnderFuzz(base, world, *(login(base, p.email) for p in people))


def test_schemathesis_finds_no_server_error_slow_or_undocumented_answer(rental: RentalUnderFuzz) -> None:
    world = rental.world
    real = {
        "house_id": str(world.house),
        "photo_id": str(world.photo),
        "viewing_id": str(world.viewing),
        "application_id": str(world.pending),
        "lease_id": str(world.lease),
        "bill_id": str(world.bill),
        "request_id": str(world.request),
    }
    callers = [rental.admin, rental.landlord, rental.tenant, {}]
    run = fuzz_service(rental.base, callers, examples=EXAMPLES, real=real)
    assert len(run.answered) > 40
    run.assert_clean()


@pytest.mark.parametrize("row", corpus_for(RENTAL), ids=lambda row: row.name)
def test_hostile_request_is_refused_at_once_without_a_leak(
    rental: RentalUnderFuzz, row: Hostile, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert_refused(rental.base, rental.landlord, row, tmp_path_factory.getbasetemp())


def test_nul_in_every_path_parameter_and_query_is_refused(
    rental: RentalUnderFuzz, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert_nul_refused_everywhere(rental.base, rental.landlord, RENTAL, tmp_path_factory.getbasetemp())
