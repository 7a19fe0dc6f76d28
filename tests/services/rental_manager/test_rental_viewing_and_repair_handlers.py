"""Viewings and repair requests along their flows on the in-memory unit of work: the ChangeViewing and
MoveMaintenance commands, the read models they return, and the events they leave; no database."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from rental_manager.domain.errors import ForbiddenMove
from rental_manager.domain.model import MaintenanceStatus, Role, ViewingStatus
from rental_manager.service import maintenance, rentals
from rental_manager.service.commands import ChangeViewing, MoveMaintenance, RequestMaintenance, RequestViewing
from rental_manager.service.errors import NotFound
from rental_manager.service.unit import Actor

from tests.services.rental_manager.fakes import NOW, LetHouse


@pytest.fixture
def place() -> LetHouse:
    return LetHouse()


def test_a_viewing_is_confirmed_by_the_landlord_and_completed(place: LetHouse) -> None:
    asked = RequestViewing(house_id=place.house.id, scheduled_at=NOW + timedelta(days=1))
    viewing = place.svc.run(rentals.request_viewing, place.as_tenant, asked)
    with pytest.raises(ForbiddenMove):
        place.svc.run(
            rentals.change_viewing,
            place.as_tenant,
            ChangeViewing(viewing_id=viewing.id, status=ViewingStatus.CONFIRMED),
        )
    for status in (ViewingStatus.CONFIRMED, ViewingStatus.COMPLETED):
        moved = place.svc.run(
            rentals.change_viewing, place.as_landlord, ChangeViewing(viewing_id=viewing.id, status=status)
        )
        assert moved.status is status
    changes = [
        (e.from_status, e.to_status) for e, _ in place.store.outbox if type(e).__name__ == "ViewingStatusChanged"
    ]
    assert changes == [("requested", "confirmed"), ("confirmed", "completed")]


def test_someone_elses_viewing_is_not_found(place: LetHouse) -> None:
    asked = RequestViewing(house_id=place.house.id, scheduled_at=NOW + timedelta(days=1))
    viewing = place.svc.run(rentals.request_viewing, place.as_tenant, asked)
    stranger = Actor(uuid.uuid4(), Role.LANDLORD)
    with pytest.raises(NotFound):
        place.svc.run(
            rentals.change_viewing, stranger, ChangeViewing(viewing_id=viewing.id, status=ViewingStatus.CANCELLED)
        )
    assert place.store.viewings.rows[viewing.id].status is ViewingStatus.REQUESTED


def test_a_repair_goes_from_open_to_closed_with_its_history(place: LetHouse) -> None:
    repair = place.svc.run(
        maintenance.request_maintenance, place.as_tenant, RequestMaintenance(house_id=place.house.id, title="Tap")
    )
    steps = [
        (place.as_landlord, "acknowledged", ""),
        (place.as_landlord, "in_progress", ""),
        (place.as_landlord, "resolved", "Washer replaced"),
        (place.as_tenant, "closed", ""),
    ]
    for who, status, note in steps:
        record = place.svc.run(
            maintenance.transition_maintenance, who, MoveMaintenance(request_id=repair.id, status=status, note=note)
        )
    assert record.status is MaintenanceStatus.CLOSED
    assert record.resolved_at == NOW
    assert [(s.from_status, s.to_status) for s in record.history] == [
        (None, "open"),
        ("open", "acknowledged"),
        ("acknowledged", "in_progress"),
        ("in_progress", "resolved"),
        ("resolved", "closed"),
    ]
    assert [s.note for s in record.history][3] == "Washer replaced"


def test_a_tenant_cannot_resolve_their_own_repair(place: LetHouse) -> None:
    repair = place.svc.run(
        maintenance.request_maintenance, place.as_tenant, RequestMaintenance(house_id=place.house.id, title="Tap")
    )
    with pytest.raises(ForbiddenMove):
        place.svc.run(
            maintenance.transition_maintenance,
            place.as_tenant,
            MoveMaintenance(request_id=repair.id, status="acknowledged"),
        )
    assert place.store.repairs.rows[repair.id].status is MaintenanceStatus.OPEN
    assert len(place.store.repairs.steps) == 1
