"""Rental-manager test support: a private database per session, settings, and a small world of users,
houses, applications, leases and bills built through the service layer."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from quartet_shared.settings import KernelSettings
from quartet_tools.harness import rental as harness
from quartet_tools.harness.rental import JWT_SECRET
from rental_manager.adapters.db import migrate, rental_engine
from rental_manager.bootstrap import Rental, bootstrap
from rental_manager.domain.model import Role
from rental_manager.service import billing, community, houses, maintenance, rentals, users
from rental_manager.service.commands import (
    AddPhoto,
    ApplyForHouse,
    RequestMaintenance,
    RequestViewing,
    SaveHouse,
    SignLease,
)
from rental_manager.service.facade import RentalService
from rental_manager.service.schemas import (
    AdminUserCreate,
    HouseCreate,
)
from rental_manager.service.unit import Actor
from rental_manager.settings import RentalSettings

PASSWORD = "correct horse battery"


def create_database(server_url: str, name: str) -> str:
    """Create database `name` on the server `server_url` points at, migrate it, and return its URL."""
    target = harness.create_database(server_url, name)
    engine = rental_engine(target)
    migrate(engine)
    engine.dispose()
    return target


@contextmanager
def private_database(server_url: str) -> Iterator[str]:
    """A migrated database of its own for the duration of the block."""
    name = f"rental_{uuid.uuid4().hex[:10]}"
    try:
        yield create_database(server_url, name)
    finally:
        harness.drop_database(server_url, name)


def rental_settings(kernel: KernelSettings, database_url: str, unique: str, **overrides: object) -> RentalSettings:
    """Rental settings for the test servers: private topics, a fixed signing key, cheap password hashing."""
    values: dict[str, object] = {
        "kafka_bootstrap_servers": kernel.kafka_bootstrap_servers,
        "redis_url": kernel.redis_url,
        "database_url": database_url,
        "service_name": "rental-test",
        "instance_id": unique,
        "topic_prefix": f"r{unique}.",
        "topic_partitions": kernel.topic_partitions,
        "retry_backoff_base_s": kernel.retry_backoff_base_s,
        "retry_backoff_max_s": kernel.retry_backoff_max_s,
        "redis_socket_timeout_s": kernel.redis_socket_timeout_s,
        "redis_retry_after_s": kernel.redis_retry_after_s,
        "jwt_secret": JWT_SECRET,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "pool_size": 20,
    }
    values.update(overrides)
    return RentalSettings(**values)  # type: ignore[arg-type]


@contextmanager
def offline_rental(directory: Path) -> Iterator[Rental]:
    """The wired rental manager on a SQLite file in `directory`, with no Redis (its cache degrades) and no Kafka."""
    cfg = RentalSettings(
        database_url=f"sqlite:///{directory / 'rental.sqlite3'}",
        redis_url="redis://127.0.0.1:1/0",
        kafka_bootstrap_servers="127.0.0.1:1",
        jwt_secret=JWT_SECRET,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        redis_retry_after_s=60,
        retry_backoff_base_s=0.02,
    )
    wired = bootstrap(cfg)
    wired.migrate()
    try:
        yield wired
    finally:
        wired.close()


def dated(service: RentalService, today: date) -> RentalService:
    """The same service with its business day set to `today` (for leases that began in the past)."""
    shifted = RentalService(
        service.settings,
        service.credentials,
        service.search_cache,
        unit_of_work=service.unit_of_work,
    )
    shifted.today = lambda: today
    return shifted


@dataclass
class Person:
    """A user with a bearer token."""

    actor: Actor
    email: str
    headers: dict[str, str]


def person(rental: Rental, role: Role, name: str = "") -> Person:
    """A new user of `role` with a valid token."""
    email = f"{role.value}-{name or uuid.uuid4().hex[:12]}@example.com"
    admin = Actor(uuid.UUID(int=0), Role.ADMIN)
    data = AdminUserCreate(email=email, password=PASSWORD, full_name=f"{role.value.title()} {name}", role=role.value)
    user = rental.service.run(users.register, rental.service.credentials, data, admin)
    actor = Actor(user.id, user.role)
    token = rental.service.login(email, PASSWORD).access_token
    return Person(actor, email, {"Authorization": f"Bearer {token}"})


def house_data(**overrides: object) -> HouseCreate:
    """A plausible house."""
    values: dict[str, object] = {
        "title": "Bright two-room flat",
        "address": "12 Rue de la République",
        "city": "Lyon",
        "district": "Presqu'île",
        "area_m2": 54.0,
        "rooms": 2,
        "monthly_rent_cents": 95_000,
        "deposit_cents": 190_000,
        "facilities": ["wifi", "lift"],
        "list_now": True,
    }
    values.update(overrides)
    return HouseCreate.model_validate(values)


@dataclass
class World:
    """Two landlords, two tenants and an admin, and what tenant T1 has going on at landlord L1's houses."""

    admin: Person
    l1: Person
    l2: Person
    t1: Person
    t2: Person
    house: uuid.UUID  # listed, L1's
    draft: uuid.UUID  # a draft, L1's
    photo: uuid.UUID
    pending: uuid.UUID  # T1's pending application on `house`
    lease: uuid.UUID  # T1's lease on `house`, begun 40 days ago
    bill: uuid.UUID  # a rent bill of that lease
    viewing: uuid.UUID
    request: uuid.UUID  # T1's open maintenance request on `house`


@dataclass
class Cast:
    """The users of a World (made once: they do not change)."""

    admin: Person
    l1: Person
    l2: Person
    t1: Person
    t2: Person


def cast(rental: Rental) -> Cast:
    """Five fresh users."""
    return Cast(
        person(rental, Role.ADMIN),
        person(rental, Role.LANDLORD),
        person(rental, Role.LANDLORD),
        person(rental, Role.TENANT),
        person(rental, Role.TENANT),
    )


def build_world(rental: Rental, c: Cast) -> World:
    """Fresh houses, applications, a begun lease, a bill, a viewing and a maintenance request."""
    svc = rental.service
    today = svc.today()
    past = dated(svc, today - timedelta(days=40))
    house = svc.run(houses.create_house, c.l1.actor, house_data()).id
    draft = svc.run(houses.create_house, c.l1.actor, house_data(list_now=False, title="Unfinished")).id
    photo = svc.run(
        houses.add_photo,
        c.l1.actor,
        AddPhoto(house_id=house, url="https://img.example.com/a.jpg", width=1600, height=1200, size_bytes=250_000),
    ).id
    begun = past.run(
        rentals.submit_application,
        c.t1.actor,
        ApplyForHouse(house_id=house, start_date=today - timedelta(days=40), end_date=today + timedelta(days=300)),
    )
    past.run(rentals.approve_application, c.l1.actor, SignLease(application_id=begun.id))
    lease = svc.run(rentals.get_application, c.t1.actor, begun.id).lease_id
    assert lease is not None
    pending = svc.run(
        rentals.submit_application,
        c.t1.actor,
        ApplyForHouse(house_id=house, start_date=today + timedelta(days=400), end_date=today + timedelta(days=700)),
    ).id
    svc.run(billing.bill_leases, [lease], today)
    bill = next(b.id for b in svc.run(billing.list_bills, c.t1.actor, lease_id=lease).items if b.kind == "rent")
    viewing = svc.run(
        rentals.request_viewing,
        c.t1.actor,
        RequestViewing(house_id=house, scheduled_at=datetime.now(UTC) + timedelta(days=3)),
    ).id
    request = svc.run(
        maintenance.request_maintenance, c.t1.actor, RequestMaintenance(house_id=house, title="Leaking tap")
    ).id
    svc.run(community.add_favourite, c.t1.actor, SaveHouse(house_id=house))
    return World(c.admin, c.l1, c.l2, c.t1, c.t2, house, draft, photo, pending, lease, bill, viewing, request)
