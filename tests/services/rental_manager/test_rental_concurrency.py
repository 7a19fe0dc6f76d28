"""Rules that must hold under concurrency, against PostgreSQL: one lease per period, no overpaid bill."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from quartet_shared.settings import KernelSettings
from rental_manager.adapters.orm import OutboxMessage, leases
from rental_manager.adapters.unit_of_work import SqlUnitOfWork
from rental_manager.bootstrap import Rental, bootstrap
from rental_manager.domain.entities import Application, Lease
from rental_manager.domain.errors import DomainError, RuleViolation
from rental_manager.domain.model import ApplicationStatus, LeaseStatus, Role
from rental_manager.service import billing, houses, rentals
from rental_manager.service.commands import ApplyForHouse, PayBill, SignLease, TerminateLease
from rental_manager.service.unit import UnitOfWork
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from tests.support.rental import Cast, house_data, person, rental_settings

pytestmark = pytest.mark.integration

CONTENDERS = 50


@pytest.fixture
def wide(settings: KernelSettings, rental_database: str, unique: str) -> Iterator[Rental]:
    """A service whose connection pool lets every contender hold a connection at once."""
    wired = bootstrap(rental_settings(settings, rental_database, unique, pool_size=CONTENDERS // 2 + 1))
    try:
        yield wired
    finally:
        wired.close()


def _race(calls: list[Callable[[], Any]]) -> list[str]:
    """Start every call at the same instant; each yields 'ok' or the name of the domain error it raised."""
    barrier = threading.Barrier(len(calls))

    def go(call: Callable[[], Any]) -> str:
        barrier.wait()
        try:
            call()
            return "ok"
        except DomainError as exc:
            return type(exc).__name__

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(go, calls))


def test_fifty_concurrent_approvals_of_overlapping_applications_sign_exactly_one_lease(
    wide: Rental, people: Cast
) -> None:
    svc = wide.service
    today = svc.today()
    house = svc.run(houses.create_house, people.l1.actor, house_data()).id
    applications = []
    for i in range(CONTENDERS):
        tenant = person(wide, Role.TENANT)
        start = today + timedelta(days=10 + i % 20)  # every period overlaps every other
        data = ApplyForHouse(house_id=house, start_date=start, end_date=start + timedelta(days=180))
        applications.append(svc.run(rentals.submit_application, tenant.actor, data).id)

    outcomes = _race(
        [
            lambda a=a: svc.run(rentals.approve_application, people.l1.actor, SignLease(application_id=a))  # type: ignore[misc]
            for a in applications
        ]
    )

    assert Counter(outcomes) == {"ok": 1, "InvalidTransition": CONTENDERS - 1}
    with wide.engine.connect() as conn:
        leases = conn.execute(select(Lease.application_id).where(Lease.house_id == house)).scalars().all()
        statuses = Counter(
            conn.execute(select(Application.status).where(Application.house_id == house)).scalars().all()
        )
        events = Counter(
            conn.execute(select(OutboxMessage.ce_type).where(OutboxMessage.key == str(house))).scalars().all()
        )
    assert len(leases) == 1
    assert leases[0] == applications[outcomes.index("ok")]
    assert statuses == {ApplicationStatus.APPROVED: 1, ApplicationStatus.REJECTED: CONTENDERS - 1}
    assert events["quartet.rental.LeaseSigned.v1"] == 1
    assert events["quartet.rental.ApplicationApproved.v1"] == 1
    assert events["quartet.rental.ApplicationRejected.v1"] == CONTENDERS - 1


def test_concurrent_approvals_of_disjoint_periods_all_succeed(wide: Rental, people: Cast) -> None:
    svc = wide.service
    today = svc.today()
    house = svc.run(houses.create_house, people.l1.actor, house_data()).id
    applications = []
    for i in range(10):
        start = today + timedelta(days=30 * i + 1)
        data = ApplyForHouse(house_id=house, start_date=start, end_date=start + timedelta(days=29))
        applications.append(svc.run(rentals.submit_application, people.t1.actor, data).id)
    outcomes = _race(
        [
            lambda a=a: svc.run(rentals.approve_application, people.l1.actor, SignLease(application_id=a))  # type: ignore[misc]
            for a in applications
        ]
    )
    assert outcomes == ["ok"] * 10
    with wide.engine.connect() as conn:
        assert conn.scalar(select(func.count()).where(Lease.house_id == house)) == 10


def test_the_exclusion_constraint_refuses_overlapping_leases_even_without_the_lock(
    rental: Rental, people: Cast
) -> None:
    svc = rental.service
    today = svc.today()
    house = svc.run(houses.create_house, people.l1.actor, house_data()).id
    data = ApplyForHouse(house_id=house, start_date=today + timedelta(days=5), end_date=today + timedelta(days=60))
    first = svc.run(rentals.submit_application, people.t1.actor, data).id
    svc.run(rentals.approve_application, people.l1.actor, SignLease(application_id=first))
    lease_id = svc.run(rentals.get_application, people.t1.actor, first).lease_id

    def forge(uow: UnitOfWork) -> None:
        # Bypasses every check of the service layer: a second lease for days the first one holds.
        assert isinstance(uow, SqlUnitOfWork)
        original = uow.session.get(Lease, lease_id)
        assert original is not None
        uow.session.add(
            Lease(
                **{
                    c.name: getattr(original, c.name)
                    for c in leases.columns
                    if c.name not in ("id", "application_id", "start_date")
                },
                id=uuid.uuid4(),
                application_id=None,
                start_date=original.end_date,
            )
        )
        uow.session.flush()

    with pytest.raises(RuleViolation) as err:
        svc.run(forge)
    assert err.value.rule == "lease_overlap"
    assert isinstance(err.value.__cause__, IntegrityError)


def test_a_lease_terminated_before_its_start_frees_its_days(rental: Rental, people: Cast) -> None:
    svc = rental.service
    today = svc.today()
    house = svc.run(houses.create_house, people.l1.actor, house_data()).id
    period = {"start_date": today + timedelta(days=20), "end_date": today + timedelta(days=80)}
    first = svc.run(rentals.submit_application, people.t1.actor, ApplyForHouse(house_id=house, **period)).id
    svc.run(rentals.approve_application, people.l1.actor, SignLease(application_id=first))
    lease_id = svc.run(rentals.get_application, people.t1.actor, first).lease_id
    assert lease_id is not None
    svc.run(
        rentals.terminate_lease,
        people.l1.actor,
        TerminateLease(
            lease_id=lease_id, end_date=today + timedelta(days=19), reason="the tenant withdrew before moving in"
        ),
    )
    second = svc.run(rentals.submit_application, people.t2.actor, ApplyForHouse(house_id=house, **period)).id
    svc.run(rentals.approve_application, people.l1.actor, SignLease(application_id=second))
    with rental.engine.connect() as conn:
        statuses = conn.execute(select(Lease.status).where(Lease.house_id == house)).scalars().all()
    assert sorted(statuses) == [LeaseStatus.ACTIVE, LeaseStatus.TERMINATED]


def test_concurrent_part_payments_never_overpay_a_bill(wide: Rental, people: Cast) -> None:
    svc = wide.service
    today = svc.today()
    house = svc.run(houses.create_house, people.l1.actor, house_data(deposit_cents=100_000)).id
    data = ApplyForHouse(house_id=house, start_date=today + timedelta(days=3), end_date=today + timedelta(days=90))
    application = svc.run(rentals.submit_application, people.t1.actor, data).id
    svc.run(rentals.approve_application, people.l1.actor, SignLease(application_id=application))
    [deposit] = svc.run(billing.list_bills, people.t1.actor).items
    assert deposit.kind == "deposit"
    assert deposit.amount_cents == 100_000

    outcomes = _race(
        [
            lambda: svc.run(billing.record_payment, people.t1.actor, PayBill(bill_id=deposit.id, amount_cents=10_000))
            for _ in range(20)
        ]
    )

    # The bill row is locked per payment: ten fit exactly, the other ten find the bill already paid.
    assert Counter(outcomes) == {"ok": 10, "InvalidTransition": 10}
    after = svc.run(billing.get_bill, people.t1.actor, deposit.id)
    assert (after.paid_cents, after.outstanding_cents, after.status) == (100_000, 0, "paid")
    ledger = svc.run(billing.list_payments, people.t1.actor, deposit.id)
    assert ledger.total == 10
    assert sum(p.amount_cents for p in ledger.items) == 100_000
