"""A landlord's decisions on applications on the in-memory unit of work: approving signs the lease, turns down the
pending applications it overlaps, issues the deposit bill and moves the house's availability, all in one unit of work;
rejecting is announced; no database (the same rules under concurrency stay in test_rental_concurrency.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from rental_manager.domain.entities import Application
from rental_manager.domain.errors import RuleViolation
from rental_manager.domain.model import ApplicationStatus, LeaseStatus, Role
from rental_manager.service import rentals
from rental_manager.service.commands import RejectApplication, SignLease
from rental_manager.service.errors import Forbidden
from rental_manager.service.unit import Actor

from tests.services.rental_manager.fakes import NOW, TODAY, LetHouse


@pytest.fixture
def place() -> LetHouse:
    return LetHouse()


def _pending(place: LetHouse, first: int, last: int) -> Application:
    """A pending application for days `first` to `last` from today, by a new tenant."""
    application = Application(
        id=uuid.uuid4(),
        house_id=place.house.id,
        tenant_id=uuid.uuid4(),
        start_date=TODAY + timedelta(days=first),
        end_date=TODAY + timedelta(days=last),
        message="",
        status=ApplicationStatus.PENDING,
        created_at=NOW - timedelta(days=1),
    )
    place.store.applications.add(application)
    return application


def test_approving_signs_the_lease_and_turns_down_the_overlapping_applications(place: LetHouse) -> None:
    chosen, overlapping, later = _pending(place, 60, 90), _pending(place, 80, 120), _pending(place, 200, 230)
    record = place.svc.run(rentals.approve_application, place.as_landlord, SignLease(application_id=chosen.id))
    lease = place.store.leases.rows[record.lease_id] if record.lease_id else None
    assert lease is not None
    assert (lease.tenant_id, lease.start_date, lease.end_date) == (chosen.tenant_id, chosen.start_date, chosen.end_date)
    assert (lease.status, lease.monthly_rent_cents, lease.deposit_cents) == (LeaseStatus.ACTIVE, 95_000, 100_000)
    assert (record.status, chosen.decided_by) == (ApplicationStatus.APPROVED, place.landlord.id)
    assert (overlapping.status, later.status) == (ApplicationStatus.REJECTED, ApplicationStatus.PENDING)
    [deposit] = [b for b in place.store.bills.bills.values() if b.lease_id == lease.id]
    assert (deposit.kind, deposit.amount_cents, deposit.due_date) == ("deposit", 100_000, chosen.start_date)
    assert place.house.available_from == chosen.end_date + timedelta(days=1)
    key = str(place.house.id)
    assert place.events() == [
        ("ApplicationApproved", key),
        ("LeaseSigned", key),
        ("ApplicationRejected", key),
        ("BillIssued", key),
    ]


def test_dates_a_lease_already_holds_cannot_be_approved(place: LetHouse) -> None:
    clash = _pending(place, 10, 40)
    with pytest.raises(RuleViolation) as refused:
        place.svc.run(rentals.approve_application, place.as_landlord, SignLease(application_id=clash.id))
    assert refused.value.rule == "lease_overlap"
    assert (clash.status, len(place.store.leases.rows), place.store.outbox) == (ApplicationStatus.PENDING, 1, [])


def test_only_the_landlord_decides_and_a_rejection_is_announced(place: LetHouse) -> None:
    application = _pending(place, 60, 90)
    applicant = Actor(application.tenant_id, Role.TENANT)
    with pytest.raises(Forbidden):
        place.svc.run(rentals.approve_application, applicant, SignLease(application_id=application.id))
    record = place.svc.run(
        rentals.reject_application, place.as_landlord, RejectApplication(application_id=application.id)
    )
    assert (record.status, record.decision_reason) == (ApplicationStatus.REJECTED, "declined by the landlord")
    assert place.events() == [("ApplicationRejected", str(place.house.id))]
