"""The read-only queries that span tables: statistics and arrears over a landlord's houses, and the directory of
house titles and people's names a screen may show (the rules are the service's; these are their SQL)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select, true, union
from sqlalchemy.orm import Session

from rental_manager.adapters.orm import (
    applications,
    bills,
    houses,
    leases,
    maintenance_requests,
    payments,
    users,
    viewings,
)
from rental_manager.adapters.repository import managed_by
from rental_manager.domain.entities import Bill, House, User
from rental_manager.domain.model import BillStatus, HouseStatus, Period, Role
from rental_manager.service.unit import Actor, Directory, Reports

# What a tenant has to do with a house: any of these rows naming both.
DEALINGS = (applications, leases, viewings, maintenance_requests)


def _owned(owner: uuid.UUID | None) -> ColumnElement[bool]:
    """Houses of `owner` (every house when None)."""
    return true() if owner is None else houses.c.landlord_id == owner


def _of_houses(owner: uuid.UUID | None) -> Select[tuple[uuid.UUID]]:
    return select(houses.c.id).where(_owned(owner))


class SqlReports(Reports):
    """Statistics and arrears in the transaction's session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def house_count(self, owner: uuid.UUID | None) -> int:
        """The houses past their draft."""
        stmt = select(func.count()).select_from(houses).where(_owned(owner), houses.c.status != HouseStatus.DRAFT)
        return self.session.scalar(stmt) or 0

    def lease_spans(self, owner: uuid.UUID | None, first: date, last: date) -> list[tuple[uuid.UUID, Period]]:
        """(house id, period) of the leases that hold days between `first` and `last`."""
        c = leases.c
        stmt = select(c.house_id, c.start_date, c.end_date).where(
            c.house_id.in_(_of_houses(owner)), c.end_date >= c.start_date, c.start_date <= last, c.end_date >= first
        )
        return [(house, Period(start, end)) for house, start, end in self.session.execute(stmt)]

    def payments_since(self, owner: uuid.UUID | None, since: datetime) -> list[tuple[datetime, int]]:
        """(paid at, cents) of the payments received since `since`."""
        c = payments.c
        stmt = select(c.paid_at, c.amount_cents).where(c.house_id.in_(_of_houses(owner)), c.paid_at >= since)
        return [(paid_at, int(cents)) for paid_at, cents in self.session.execute(stmt)]

    def rent_billed_since(self, owner: uuid.UUID | None, first: date) -> list[tuple[date, int]]:
        """(period start, cents) of the rent bills, but cancelled ones, for periods from `first` on."""
        c = bills.c
        stmt = select(c.period_start, c.amount_cents).where(
            c.house_id.in_(_of_houses(owner)),
            c.kind == "rent",
            c.status != BillStatus.CANCELLED,
            c.period_start >= first,
        )
        return [(start, int(cents)) for start, cents in self.session.execute(stmt)]

    def overdue(self, owner: uuid.UUID | None) -> list[tuple[Bill, str]]:
        """The overdue bills, each with its house's title."""
        stmt = (
            select(Bill, houses.c.title)
            .join(houses, houses.c.id == bills.c.house_id)
            .where(bills.c.status == BillStatus.OVERDUE, _owned(owner))
        )
        return [(bill, title) for bill, title in self.session.execute(stmt)]


def _tenant_houses(tenant_id: uuid.UUID) -> ColumnElement[bool]:
    related = union(*(select(t.c.house_id).where(t.c.tenant_id == tenant_id) for t in DEALINGS))
    return houses.c.id.in_(related)


class SqlDirectory(Directory):
    """House titles and people's names in the transaction's session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def houses(self, actor: Actor, house_ids: Collection[uuid.UUID]) -> list[House]:
        """Those of these houses the actor may name."""
        stmt = select(House).where(houses.c.id.in_(set(house_ids)))
        if not actor.is_admin:
            stmt = stmt.where(
                or_(houses.c.status == HouseStatus.LISTED, houses.c.landlord_id == actor.id, _tenant_houses(actor.id))
            )
        return list(self.session.scalars(stmt))

    def people(self, actor: Actor, user_ids: Collection[uuid.UUID]) -> list[User]:
        """The actor and those of these people on the other side of the actor's dealings."""
        stmt = select(User).where(users.c.id.in_(set(user_ids)))
        if not actor.is_admin:
            counterparts: Any
            if actor.role is Role.LANDLORD:
                mine = managed_by(actor.id)
                counterparts = union(*(select(t.c.tenant_id).where(t.c.house_id.in_(mine)) for t in DEALINGS))
            else:
                counterparts = union(
                    select(houses.c.landlord_id).where(_tenant_houses(actor.id)),
                    select(leases.c.landlord_id).where(leases.c.tenant_id == actor.id),
                )
            stmt = stmt.where(or_(users.c.id == actor.id, users.c.id.in_(counterparts)))
        return list(self.session.scalars(stmt))
