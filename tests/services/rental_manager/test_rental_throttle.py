"""Sign-in throttling against real Redis and PostgreSQL: failures counted per account and per client address,
shared between API processes through Redis, and still enforced per process while Redis is stopped."""

from __future__ import annotations

import uuid
from contextlib import closing

import httpx
import pytest
from fastapi.testclient import TestClient
from rental_manager.bootstrap import Rental, bootstrap
from rental_manager.domain.model import Role
from rental_manager.entrypoints.api import create_api

from tests.support.rental import PASSWORD, Cast, person
from tests.support.servers import Servers

pytestmark = pytest.mark.integration


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/auth/token", data={"username": email, "password": password})


def assert_throttled(answer: httpx.Response, window_s: int) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    wait = int(answer.headers["retry-after"])
    assert 1 <= wait <= window_s
    assert answer.json()["retry_after_s"] == wait
    assert "access_token" not in answer.text


def test_forty_wrong_passwords_then_the_right_one_is_refused(client: TestClient, people: Cast) -> None:
    email, limit = people.t1.email, 5
    answers = [sign_in(client, email, f"guess number {i}").status_code for i in range(40)]
    assert answers == [401] * limit + [429] * (40 - limit)
    assert_throttled(sign_in(client, email), 300)
    # Another account from the same address is not locked by this one's failures.
    assert sign_in(client, people.t2.email).status_code == 200


def test_one_address_guessing_many_accounts_is_refused_for_all(rental: Rental, people: Cast) -> None:
    app = create_api(rental)
    with TestClient(app, client=("203.0.113.7", 40000)) as guesser, TestClient(app) as other:
        for _ in range(20):
            assert sign_in(guesser, f"nobody-{uuid.uuid4().hex[:8]}@example.com", "wrong password").status_code == 401
        assert_throttled(sign_in(guesser, people.l1.email), 300)
        assert sign_in(other, people.l1.email).status_code == 200


def test_a_successful_sign_in_forgets_the_accounts_failures(client: TestClient, people: Cast) -> None:
    for _ in range(3):
        for _ in range(4):
            assert sign_in(client, people.t1.email, "wrong password").status_code == 401
        assert sign_in(client, people.t1.email).status_code == 200


def test_counts_are_shared_through_redis_and_held_per_process_while_it_is_down(
    rental: Rental, servers: Servers
) -> None:
    # Another API process's wiring on the same database and Redis (so the same throttle namespace).
    with closing(bootstrap(rental.settings)) as second:
        first, other = TestClient(create_api(rental)), TestClient(create_api(second))
        shared, alone = person(rental, Role.TENANT), person(rental, Role.TENANT)
        for _ in range(5):
            assert sign_in(first, shared.email, "wrong password").status_code == 401
        assert_throttled(sign_in(other, shared.email), 300)  # counted by the first process, refused by the second
        servers.stop_redis()
        try:
            assert_throttled(sign_in(first, shared.email), 300)  # counted before the outage, still counts
            for _ in range(5):
                assert sign_in(other, alone.email, "wrong password").status_code == 401
            assert_throttled(sign_in(other, alone.email), 300)
        finally:
            servers.start_redis()
