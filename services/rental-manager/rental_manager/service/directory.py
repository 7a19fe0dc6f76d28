"""Labels for user interfaces: house titles and people's names, limited to what the caller already deals with.

Lists of applications, leases, bills or requests carry only ids. A screen shows the house's title and the
other party's name instead, so these read-only look-ups answer only for houses the caller may see or has
dealings with, and for people on the other side of the caller's own applications, viewings and leases.
Anything else is simply left out of the answer, as if unknown.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select, union

from rental_manager.adapters.orm import Application, House, Lease, MaintenanceRequest, MaintenanceUpdate, User, Viewing
from rental_manager.domain.model import HouseStatus, Role
from rental_manager.service import houses
from rental_manager.service.access import managed_house, require, scope
from rental_manager.service.read_models import HouseRecord, MaintenanceStep
from rental_manager.service.unit import Actor, UnitOfWork

DEALINGS = (Application, Lease, Viewing, MaintenanceRequest)


@dataclass(frozen=True)
class HouseLabel:
    """How a screen names a house."""

    title: str
    city: str
    district: str


@dataclass(frozen=True)
class PersonLabel:
    """How a screen names a person (the e-mail address lets the other side get in touch)."""

    full_name: str
    email: str
    role: Role


def _tenant_houses(tenant_id: uuid.UUID) -> ColumnElement[bool]:
    related = union(*(select(model.house_id).where(model.tenant_id == tenant_id) for model in DEALINGS))
    return House.id.in_(related)


def house_labels(uow: UnitOfWork, actor: Actor | None, house_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, HouseLabel]:
    """Titles of those houses that are listed, managed by the caller, or in the caller's own dealings."""
    who = require(actor)
    if not house_ids:
        return {}
    stmt = select(House.id, House.title, House.city, House.district).where(House.id.in_(set(house_ids)))
    if not who.is_admin:
        stmt = stmt.where(or_(House.status == HouseStatus.LISTED, House.landlord_id == who.id, _tenant_houses(who.id)))
    return {row.id: HouseLabel(row.title, row.city, row.district) for row in uow.session.execute(stmt)}


def people(uow: UnitOfWork, actor: Actor | None, user_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, PersonLabel]:
    """Names of the caller and of those on the other side of the caller's dealings (admins: anyone)."""
    who = require(actor)
    if not user_ids:
        return {}
    stmt = select(User.id, User.full_name, User.email, User.role).where(User.id.in_(set(user_ids)))
    if not who.is_admin:
        if who.role is Role.LANDLORD:
            mine = select(House.id).where(House.landlord_id == who.id)
            counterparts = union(*(select(model.tenant_id).where(model.house_id.in_(mine)) for model in DEALINGS))
        else:
            counterparts = union(
                select(House.landlord_id).where(_tenant_houses(who.id)),
                select(Lease.landlord_id).where(Lease.tenant_id == who.id),
            )
        stmt = stmt.where(or_(User.id == who.id, User.id.in_(counterparts)))
    return {row.id: PersonLabel(row.full_name, row.email, row.role) for row in uow.session.execute(stmt)}


def managed_house_public(uow: UnitOfWork, actor: Actor | None, house_id: uuid.UUID) -> HouseRecord:
    """A house the caller manages, in full (for its edit form): 404 if they cannot see it, 403 if not theirs."""
    managed_house(uow, actor, house_id)
    return houses.get_house(uow, actor, house_id)


def maintenance_histories(
    uow: UnitOfWork, actor: Actor | None, request_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[MaintenanceStep]]:
    """The steps of those repair requests the caller may see, oldest first (one query for a whole list)."""
    who = require(actor)
    if not request_ids:
        return {}
    visible = select(MaintenanceRequest.id).where(
        MaintenanceRequest.id.in_(set(request_ids)), scope(who, MaintenanceRequest)
    )
    rows = uow.session.scalars(
        select(MaintenanceUpdate)
        .where(MaintenanceUpdate.request_id.in_(visible))
        .order_by(MaintenanceUpdate.created_at, MaintenanceUpdate.id)
    )
    steps: dict[uuid.UUID, list[MaintenanceStep]] = {}
    for row in rows:
        steps.setdefault(row.request_id, []).append(MaintenanceStep.model_validate(row))
    return steps
