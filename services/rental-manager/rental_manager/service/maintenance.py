"""Maintenance requests: a tenant reports, the landlord acknowledges, works and resolves, the tenant closes."""

from __future__ import annotations

import uuid

from quartet_contracts.schemas.rental import MaintenanceRequested, MaintenanceResolved, MaintenanceStatusChanged

from rental_manager.domain.entities import MaintenanceRequest, MaintenanceUpdate
from rental_manager.domain.model import MAINTENANCE, MaintenanceStatus, Role
from rental_manager.service.access import load_house, load_scoped, require
from rental_manager.service.commands import MoveMaintenance, RequestMaintenance
from rental_manager.service.errors import Forbidden
from rental_manager.service.paging import Order, Window, paged
from rental_manager.service.read_models import MaintenanceRecord, MaintenanceStep
from rental_manager.service.schemas import Page
from rental_manager.service.unit import Actor, UnitOfWork


def _public(uow: UnitOfWork, request: MaintenanceRequest) -> MaintenanceRecord:
    history = uow.repairs.history(request.id)
    return MaintenanceRecord.model_validate(request).model_copy(
        update={"history": [MaintenanceStep.model_validate(h) for h in history]}
    )


def request_maintenance(uow: UnitOfWork, actor: Actor | None, data: RequestMaintenance) -> MaintenanceRecord:
    """Report, as the tenant of an active lease that has begun, something to repair in the house."""
    who = require(actor, Role.TENANT)
    lease = uow.leases.current(data.house_id, who.id, uow.today)
    if lease is None:
        load_house(uow, who, data.house_id)  # 404 if the tenant cannot even see the house
        raise Forbidden("only a tenant living in the house may request maintenance")
    request = MaintenanceRequest(
        id=uuid.uuid4(),
        house_id=data.house_id,
        lease_id=lease.id,
        tenant_id=who.id,
        title=data.title,
        description=data.description,
        priority=data.priority,
        status=MaintenanceStatus.OPEN,
        created_at=uow.now,
        updated_at=uow.now,
    )
    uow.repairs.add(request)
    uow.repairs.add_step(
        MaintenanceUpdate(
            id=uuid.uuid4(),
            request_id=request.id,
            actor_id=who.id,
            from_status=None,
            to_status=MaintenanceStatus.OPEN.value,
            note=data.description[:2000],
            created_at=uow.now,
        )
    )
    uow.emit(
        MaintenanceRequested(
            request_id=request.id,
            house_id=data.house_id,
            lease_id=lease.id,
            tenant_id=who.id,
            title=request.title,
            priority=data.priority,
        ),
        key=data.house_id,
    )
    return _public(uow, request)


def transition_maintenance(uow: UnitOfWork, actor: Actor | None, data: MoveMaintenance) -> MaintenanceRecord:
    """Move a request along its flow; the domain decides which side may make which move."""
    request = load_scoped(actor, uow.repairs, data.request_id, "maintenance request", lock=True)
    who = require(actor)
    if who.role is Role.TENANT and request.tenant_id != who.id:
        raise Forbidden("only the tenant who asked may change this request")
    current, target = request.status, MaintenanceStatus(data.status)
    MAINTENANCE.check(current, target, who.party)
    request.status = target
    request.updated_at = uow.now
    if target is MaintenanceStatus.RESOLVED:
        request.resolved_at = uow.now
    uow.repairs.add_step(
        MaintenanceUpdate(
            id=uuid.uuid4(),
            request_id=request.id,
            actor_id=who.id,
            from_status=current.value,
            to_status=target.value,
            note=data.note,
            created_at=uow.now,
        )
    )
    uow.emit(
        MaintenanceStatusChanged(
            request_id=request.id, house_id=request.house_id, from_status=current.value, to_status=target.value
        ),
        key=request.house_id,
    )
    if target is MaintenanceStatus.RESOLVED:
        uow.emit(MaintenanceResolved(request_id=request.id, house_id=request.house_id), key=request.house_id)
    return _public(uow, request)


def get_maintenance(uow: UnitOfWork, actor: Actor | None, request_id: uuid.UUID) -> MaintenanceRecord:
    """A maintenance request and its history."""
    return _public(uow, load_scoped(actor, uow.repairs, request_id, "maintenance request"))


def list_maintenance(
    uow: UnitOfWork,
    actor: Actor | None,
    status: MaintenanceStatus | None = None,
    house_id: uuid.UUID | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[MaintenanceRecord]:
    """Requests the caller may see (a landlord's queue, a tenant's own), newest first."""
    window = Window(page, page_size)
    found = uow.repairs.listed(require(actor), {"status": status, "house_id": house_id}, Order("created_at"), window)
    return paged(found, MaintenanceRecord, window)
