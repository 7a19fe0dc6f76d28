"""Registration on the in-memory unit of work: the RegisterUser and CreateUser commands the API and the web UI
build, the UserRecord they get back, and the UserRegistered event in the outbox; no database."""

from __future__ import annotations

import uuid

import pytest
from argon2 import PasswordHasher
from rental_manager.domain.model import Role
from rental_manager.service import users
from rental_manager.service.commands import CreateUser, RegisterUser
from rental_manager.service.errors import Conflict, Forbidden, Unauthorized
from rental_manager.service.read_models import UserRecord
from rental_manager.service.unit import Actor

from tests.services.rental_manager.fakes import NOW, FakeStore, FakeTransactions

PASSWORD = "a long and unusual password"
# The cheapest argon2 settings: these tests are about the handler, not the hash's cost.
CREDENTIALS = users.Credentials(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1), "s" * 32, 600)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


def test_signing_up_stores_a_hashed_password_and_announces_the_account(store: FakeStore) -> None:
    svc = FakeTransactions(store)
    record = svc.run(
        users.register, CREDENTIALS, RegisterUser(email="Ana@Example.com", password=PASSWORD, full_name="Ana")
    )
    assert isinstance(record, UserRecord)
    assert (record.email, record.role, record.active, record.created_at) == ("ana@example.com", Role.TENANT, True, NOW)
    stored = store.users.rows[record.id]
    assert stored.password_hash != PASSWORD
    assert CREDENTIALS.hasher.verify(stored.password_hash, PASSWORD)
    [(event, key)] = store.outbox
    assert (type(event).__name__, event.role, key) == ("UserRegistered", "tenant", str(record.id))


def test_an_address_registers_once_whatever_its_case(store: FakeStore) -> None:
    svc = FakeTransactions(store)
    svc.run(users.register, CREDENTIALS, RegisterUser(email="bo@example.com", password=PASSWORD, full_name="Bo"))
    with pytest.raises(Conflict):
        svc.run(users.register, CREDENTIALS, RegisterUser(email="BO@example.com", password=PASSWORD, full_name="B"))
    assert (len(store.users.rows), len(store.outbox)) == (1, 1)


def test_only_an_admin_creates_accounts_of_any_kind(store: FakeStore) -> None:
    svc = FakeTransactions(store)
    admin_account = CreateUser(email="root@example.com", password=PASSWORD, full_name="Root", role="admin")
    with pytest.raises(Unauthorized):
        svc.run(users.register, CREDENTIALS, admin_account)
    with pytest.raises(Forbidden):
        svc.run(users.register, CREDENTIALS, admin_account, Actor(uuid.uuid4(), Role.LANDLORD))
    assert store.users.rows == {}
    made = svc.run(users.register, CREDENTIALS, admin_account, Actor(uuid.uuid4(), Role.ADMIN))
    assert made.role is Role.ADMIN
