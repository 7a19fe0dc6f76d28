"""Who sees what: tenants their own affairs, landlords their houses and what hangs off them, admins all.

A resource the caller may not know about is reported as missing (404); one they may see but not change is
forbidden (403); a caller without valid credentials is unauthorized (401).
"""

from __future__ import annotations

import uuid
from typing import TypeVar

from rental_manager.domain.entities import House
from rental_manager.domain.model import HouseStatus, Role
from rental_manager.service.errors import Forbidden, NotFound, Unauthorized
from rental_manager.service.unit import Actor, Scoped, UnitOfWork

R = TypeVar("R")


def require(actor: Actor | None, *roles: Role) -> Actor:
    """The actor, if authenticated and (when roles are given) in one of them."""
    if actor is None:
        raise Unauthorized("sign in first")
    if roles and actor.role not in roles:
        raise Forbidden(f"only {' or '.join(r.value for r in roles)} users may do this")
    return actor


def house_visible(actor: Actor | None, house: House) -> bool:
    """Listed houses are public; the rest only to their landlord and admins."""
    if house.status is HouseStatus.LISTED:
        return True
    return actor is not None and (actor.is_admin or house.landlord_id == actor.id)


def manages(actor: Actor, house: House) -> bool:
    """True if the actor is the house's landlord or an admin."""
    return actor.is_admin or house.landlord_id == actor.id


def load_house(uow: UnitOfWork, actor: Actor | None, house_id: uuid.UUID, *, lock: bool = False) -> House:
    """A house the actor may see (404 otherwise), optionally locked for the transaction."""
    house = uow.houses.get(house_id, lock=lock)
    if house is None or not house_visible(actor, house):
        raise NotFound("house", house_id)
    return house


def managed_house(uow: UnitOfWork, actor: Actor | None, house_id: uuid.UUID, *, lock: bool = False) -> House:
    """A house the actor manages: 404 if they cannot see it, 403 if they see it but do not manage it."""
    who = require(actor)
    house = load_house(uow, who, house_id, lock=lock)
    if not manages(who, house):
        raise Forbidden("only the house's landlord or an admin may do this")
    return house


def load_scoped(actor: Actor | None, rows: Scoped[R], ident: uuid.UUID, name: str, *, lock: bool = False) -> R:
    """A row the actor may see, or NotFound (whether it is missing or merely someone else's)."""
    row = rows.get(require(actor), ident, lock=lock)
    if row is None:
        raise NotFound(name, ident)
    return row
