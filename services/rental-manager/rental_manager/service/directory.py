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

from rental_manager.domain.model import Role
from rental_manager.service import houses
from rental_manager.service.access import managed_house, require
from rental_manager.service.read_models import HouseRecord, MaintenanceStep
from rental_manager.service.unit import Actor, UnitOfWork


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


def house_labels(uow: UnitOfWork, actor: Actor | None, house_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, HouseLabel]:
    """Titles of those houses that are listed, managed by the caller, or in the caller's own dealings."""
    who = require(actor)
    if not house_ids:
        return {}
    return {h.id: HouseLabel(h.title, h.city, h.district) for h in uow.directory.houses(who, house_ids)}


def people(uow: UnitOfWork, actor: Actor | None, user_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, PersonLabel]:
    """Names of the caller and of those on the other side of the caller's dealings (admins: anyone)."""
    who = require(actor)
    if not user_ids:
        return {}
    return {u.id: PersonLabel(u.full_name, u.email, u.role) for u in uow.directory.people(who, user_ids)}


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
    steps = uow.repairs.histories(who, request_ids)
    return {request: [MaintenanceStep.model_validate(s) for s in history] for request, history in steps.items()}
