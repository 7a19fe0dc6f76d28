"""Repositories over SQLAlchemy: the service's ports (`service.unit`) on PostgreSQL (or SQLite).

Queries are written against the tables of `adapters.orm` (`houses.c.city`), and load the domain's entities.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from datetime import date
from typing import Any, Generic, TypeVar

from quartet_shared.db import claim_message
from sqlalchemy import ColumnElement, Select, Table, func, or_, select, true
from sqlalchemy.orm import Session

from rental_manager.adapters.orm import (
    announcements,
    applications,
    bills,
    favourites,
    house_photos,
    houses,
    leases,
    maintenance_requests,
    maintenance_updates,
    payments,
    reviews,
    users,
)
from rental_manager.domain.entities import (
    Announcement,
    Application,
    Bill,
    Favourite,
    House,
    HousePhoto,
    Lease,
    MaintenanceRequest,
    MaintenanceUpdate,
    Payment,
    Review,
    User,
)
from rental_manager.domain.model import ApplicationStatus, BillStatus, HouseStatus, LeaseStatus, Period, Role
from rental_manager.service.paging import Found, Order, Window, given
from rental_manager.service.schemas import HouseQuery
from rental_manager.service.unit import (
    Actor,
    Announcements,
    Applications,
    Bills,
    Favourites,
    Houses,
    Inbox,
    Leases,
    Repairs,
    Reviews,
    Scoped,
    Users,
)

T = TypeVar("T")

OWING = (BillStatus.ISSUED, BillStatus.PARTIALLY_PAID, BillStatus.OVERDUE)
OPEN = (BillStatus.ISSUED, BillStatus.PARTIALLY_PAID)


def managed_by(landlord_id: uuid.UUID) -> Select[tuple[uuid.UUID]]:
    """The ids of a landlord's houses."""
    return select(houses.c.id).where(houses.c.landlord_id == landlord_id)


def scope(actor: Actor, table: Table) -> ColumnElement[bool]:
    """The rows of `table` (which has house_id and tenant_id) the actor may see: `access`'s rule as SQL."""
    if actor.is_admin:
        return true()
    if actor.role is Role.TENANT:
        return table.c.tenant_id == actor.id
    return table.c.house_id.in_(managed_by(actor.id))


def locked(stmt: Select[Any]) -> Select[Any]:
    """`stmt` locking its rows for the rest of the transaction, and re-reading any the session holds already."""
    return stmt.with_for_update().execution_options(populate_existing=True)


class InSession:
    """A repository working in one transaction's session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _write(self, row: object) -> None:
        """Add a new row and flush it, so a constraint it breaks fails in the call that wrote it."""
        self.session.add(row)
        self.session.flush()

    def _found(
        self, stmt: Select[Any], table: Table, where: Mapping[str, object], order: Order, window: Window
    ) -> Found[Any]:
        """One window of `stmt`'s entities, narrowed to `where`'s equalities, in `order` then by id."""
        for name, value in given(where).items():
            stmt = stmt.where(table.c[name] == value)
        total = self.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        column = table.c[order.field]
        stmt = stmt.order_by(column.desc() if order.descending else column.asc(), table.c.id)
        return Found(list(self.session.scalars(stmt.offset(window.offset).limit(window.size))), total)


class SqlScoped(InSession, Scoped[T], Generic[T]):
    """Entities of one table with `house_id` and `tenant_id`, filtered by `scope`."""

    def __init__(self, session: Session, entity: type[T], table: Table) -> None:
        super().__init__(session)
        self.entity = entity
        self.table = table

    def get(self, actor: Actor, ident: uuid.UUID, *, lock: bool = False) -> T | None:
        """The row if the actor may see it (locked, and re-read, when asked), else None."""
        stmt = select(self.entity).where(self.table.c.id == ident, scope(actor, self.table))
        return self.session.scalars(locked(stmt) if lock else stmt).first()

    def add(self, row: T) -> None:
        """Add and flush."""
        self._write(row)

    def listed(self, actor: Actor, where: Mapping[str, object], order: Order, window: Window) -> Found[T]:
        """One window of the rows the actor may see."""
        stmt = select(self.entity).where(scope(actor, self.table))
        return self._found(stmt, self.table, where, order, window)


class SqlBills(SqlScoped[Bill], Bills):
    """Bills and payments in the transaction's session."""

    def __init__(self, session: Session) -> None:
        super().__init__(session, Bill, bills)

    def add(self, row: Bill) -> None:
        """Add the bill to the session (flushed with the transaction's next query or commit: a run issues many)."""
        self.session.add(row)

    def payment_by_reference(self, bill_id: uuid.UUID, reference: str) -> Payment | None:
        """The payment already recorded on the bill under this reference, if any."""
        stmt = select(Payment).where(payments.c.bill_id == bill_id, payments.c.reference == reference)
        return self.session.scalars(stmt).first()

    def add_payment(self, payment: Payment) -> None:
        """Record a payment in the ledger (flushed, so a duplicate reference fails here)."""
        self._write(payment)

    def owing(
        self, actor: Actor, *, lease_ids: Collection[uuid.UUID] = (), bill_ids: Collection[uuid.UUID] = ()
    ) -> list[Bill]:
        """The bills the actor may see that are still owed, of these leases or with these ids."""
        if not lease_ids and not bill_ids:
            return []
        stmt = select(Bill).where(scope(actor, bills), bills.c.status.in_(OWING))
        if lease_ids:
            stmt = stmt.where(bills.c.lease_id.in_(set(lease_ids)))
        if bill_ids:
            stmt = stmt.where(bills.c.id.in_(set(bill_ids)))
        return list(self.session.scalars(stmt))

    def ledger(self, actor: Actor, where: Mapping[str, object], order: Order, window: Window) -> Found[Payment]:
        """One window of the ledger entries the actor may see."""
        return self._found(select(Payment).where(scope(actor, payments)), payments, where, order, window)

    def rent_periods(self, lease_id: uuid.UUID) -> set[date]:
        """The first days of the periods the lease's rent bills cover."""
        stmt = select(bills.c.period_start).where(bills.c.lease_id == lease_id, bills.c.kind == "rent")
        return set(self.session.scalars(stmt))

    def rent_after(self, lease_id: uuid.UUID, day: date) -> list[Bill]:
        """The lease's rent bills for periods starting after `day`, locked."""
        stmt = select(Bill).where(bills.c.lease_id == lease_id, bills.c.kind == "rent", bills.c.period_start > day)
        return list(self.session.scalars(stmt.with_for_update()))

    def open_due_before(self, day: date) -> list[uuid.UUID]:
        """Issued or part-paid bills due before `day`, earliest due first."""
        stmt = select(bills.c.id).where(bills.c.status.in_(OPEN), bills.c.due_date < day)
        return list(self.session.scalars(stmt.order_by(bills.c.due_date, bills.c.id)))

    def with_leases(self, bill_ids: Collection[uuid.UUID]) -> list[tuple[Bill, Lease]]:
        """These bills, each with its lease, by bill id; the bills locked."""
        stmt = (
            select(Bill, Lease)
            .join(leases, leases.c.id == bills.c.lease_id)
            .where(bills.c.id.in_(set(bill_ids)))
            .order_by(bills.c.id)
            .with_for_update(of=bills)
        )
        return [(bill, lease) for bill, lease in self.session.execute(stmt)]


class SqlUsers(InSession, Users):
    """Accounts in the transaction's session."""

    def get(self, user_id: uuid.UUID, *, lock: bool = False) -> User | None:
        """The account with this id (locked, and re-read, when asked), if any."""
        stmt = select(User).where(users.c.id == user_id)
        return self.session.scalars(locked(stmt) if lock else stmt).first()

    def by_email(self, email: str) -> User | None:
        """The account with this e-mail address, if any."""
        return self.session.scalars(select(User).where(users.c.email == email)).first()

    def add(self, user: User) -> None:
        """Add and flush."""
        self._write(user)

    def listed(self, where: Mapping[str, object], order: Order, window: Window) -> Found[User]:
        """One window of the accounts."""
        return self._found(select(User), users, where, order, window)


class SqlHouses(InSession, Houses):
    """Houses and their photos in the transaction's session."""

    def get(self, house_id: uuid.UUID, *, lock: bool = False) -> House | None:
        """The house (locked, and re-read, for the rest of the transaction when asked), or None."""
        stmt = select(House).where(houses.c.id == house_id)
        return self.session.scalars(locked(stmt) if lock else stmt).first()

    def add(self, house: House) -> None:
        """Add and flush."""
        self._write(house)

    def listed(self, where: Mapping[str, object], order: Order, window: Window) -> Found[House]:
        """One window of the houses."""
        return self._found(select(House), houses, where, order, window)

    def search(self, query: HouseQuery, order: Order, window: Window) -> Found[House]:
        """One window of the listed houses matching the query, city and district compared in lower case."""
        stmt = select(House).where(houses.c.status == HouseStatus.LISTED)
        for name, place in query.places().items():
            stmt = stmt.where(func.lower(houses.c[name]) == place)
        for name, least, bound in query.limits():
            stmt = stmt.where(houses.c[name] >= bound if least else houses.c[name] <= bound)
        return self._found(stmt, houses, {}, order, window)

    def photos(self, house_id: uuid.UUID) -> list[HousePhoto]:
        """The house's photos by position, then age."""
        stmt = select(HousePhoto).where(house_photos.c.house_id == house_id)
        return list(self.session.scalars(stmt.order_by(house_photos.c.position, house_photos.c.created_at)))

    def photo(self, photo_id: uuid.UUID) -> HousePhoto | None:
        """The photo with this id, if any."""
        return self.session.get(HousePhoto, photo_id)

    def add_photo(self, photo: HousePhoto) -> None:
        """Add and flush."""
        self._write(photo)

    def remove_photo(self, photo: HousePhoto) -> None:
        """Delete the row."""
        self.session.delete(photo)


class SqlApplications(SqlScoped[Application], Applications):
    """Applications in the transaction's session."""

    def __init__(self, session: Session) -> None:
        super().__init__(session, Application, applications)

    def pending_on(self, house_id: uuid.UUID, exclude: uuid.UUID | None = None) -> list[Application]:
        """The house's pending applications but `exclude`, locked."""
        c = applications.c
        stmt = select(Application).where(c.house_id == house_id, c.status == ApplicationStatus.PENDING)
        if exclude is not None:
            stmt = stmt.where(c.id != exclude)
        return list(self.session.scalars(stmt.with_for_update()))


class SqlLeases(SqlScoped[Lease], Leases):
    """Leases in the transaction's session."""

    def __init__(self, session: Session) -> None:
        super().__init__(session, Lease, leases)

    def of_application(self, application_id: uuid.UUID) -> uuid.UUID | None:
        """The id of the lease an approved application became, if any."""
        return self.session.scalar(select(leases.c.id).where(leases.c.application_id == application_id))

    def of_applications(self, application_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        """The lease each of these applications became, by application id."""
        if not application_ids:
            return {}
        stmt = select(leases.c.application_id, leases.c.id).where(leases.c.application_id.in_(set(application_ids)))
        return {application: lease for application, lease in self.session.execute(stmt).all() if application}

    def periods(self, house_id: uuid.UUID, exclude: uuid.UUID | None = None) -> list[Period]:
        """The periods of the house's leases that hold days."""
        c = leases.c
        stmt = select(c.start_date, c.end_date).where(c.house_id == house_id, c.end_date >= c.start_date)
        if exclude is not None:
            stmt = stmt.where(c.id != exclude)
        return [Period(s, e) for s, e in self.session.execute(stmt)]

    def current(self, house_id: uuid.UUID, tenant_id: uuid.UUID, today: date) -> Lease | None:
        """The tenant's latest active lease of the house that has begun by `today`."""
        c = leases.c
        stmt = select(Lease).where(
            c.house_id == house_id, c.tenant_id == tenant_id, c.status == LeaseStatus.ACTIVE, c.start_date <= today
        )
        return self.session.scalars(stmt.order_by(c.start_date.desc())).first()

    def active_ends(self, house_id: uuid.UUID) -> list[date]:
        """The last days of the house's active leases that hold days."""
        c = leases.c
        stmt = select(c.end_date).where(
            c.house_id == house_id, c.status == LeaseStatus.ACTIVE, c.end_date >= c.start_date
        )
        return list(self.session.scalars(stmt))

    def of_tenant(self, house_id: uuid.UUID, tenant_id: uuid.UUID) -> list[Lease]:
        """The tenant's leases of the house that hold days."""
        c = leases.c
        stmt = select(Lease).where(c.house_id == house_id, c.tenant_id == tenant_id, c.end_date >= c.start_date)
        return list(self.session.scalars(stmt))

    def begun_active(self, day: date) -> list[uuid.UUID]:
        """The active leases begun by `day`, by id."""
        c = leases.c
        stmt = select(c.id).where(c.status == LeaseStatus.ACTIVE, c.start_date <= day).order_by(c.id)
        return list(self.session.scalars(stmt))

    def locked(self, lease_ids: Collection[uuid.UUID]) -> list[Lease]:
        """These leases by id, locked."""
        stmt = select(Lease).where(leases.c.id.in_(set(lease_ids))).order_by(leases.c.id)
        return list(self.session.scalars(locked(stmt)))


class SqlRepairs(SqlScoped[MaintenanceRequest], Repairs):
    """Maintenance requests and their history in the transaction's session."""

    def __init__(self, session: Session) -> None:
        super().__init__(session, MaintenanceRequest, maintenance_requests)

    def add_step(self, step: MaintenanceUpdate) -> None:
        """Append a step to a request's history."""
        self.session.add(step)

    def history(self, request_id: uuid.UUID) -> list[MaintenanceUpdate]:
        """The request's steps, oldest first."""
        return self.histories(None, [request_id]).get(request_id, [])

    def histories(
        self, actor: Actor | None, request_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, list[MaintenanceUpdate]]:
        """The steps, oldest first, of those of these requests the actor (None: anyone) may see, by request."""
        if not request_ids:
            return {}
        wanted = select(self.table.c.id).where(self.table.c.id.in_(set(request_ids)))
        if actor is not None:
            wanted = wanted.where(scope(actor, self.table))
        u = maintenance_updates.c
        stmt = select(MaintenanceUpdate).where(u.request_id.in_(wanted)).order_by(u.created_at, u.id)
        steps: dict[uuid.UUID, list[MaintenanceUpdate]] = {}
        for step in self.session.scalars(stmt):
            steps.setdefault(step.request_id, []).append(step)
        return steps


class SqlAnnouncements(InSession, Announcements):
    """Notices in the transaction's session."""

    def add(self, note: Announcement) -> None:
        """Add and flush."""
        self._write(note)

    def visible_to(self, actor: Actor, order: Order, window: Window) -> Found[Announcement]:
        """One window of the notices for the actor."""
        stmt = select(Announcement)
        if not actor.is_admin:
            if actor.role is Role.LANDLORD:
                mine = managed_by(actor.id)
            else:
                c = leases.c
                mine = select(c.house_id).where(c.tenant_id == actor.id, c.status == LeaseStatus.ACTIVE)
            stmt = stmt.where(or_(announcements.c.house_id.is_(None), announcements.c.house_id.in_(mine)))
        return self._found(stmt, announcements, {}, order, window)


class SqlFavourites(InSession, Favourites):
    """Saved houses in the transaction's session."""

    def get(self, tenant_id: uuid.UUID, house_id: uuid.UUID) -> Favourite | None:
        """The saving, if any."""
        return self.session.get(Favourite, (tenant_id, house_id))

    def add(self, favourite: Favourite) -> None:
        """Add and flush."""
        self._write(favourite)

    def remove(self, favourite: Favourite) -> None:
        """Delete the row."""
        self.session.delete(favourite)

    def of_tenant(self, tenant_id: uuid.UUID) -> list[tuple[Favourite, House]]:
        """The tenant's savings with their houses, newest first."""
        stmt = (
            select(Favourite, House)
            .join(houses, houses.c.id == favourites.c.house_id)
            .where(favourites.c.tenant_id == tenant_id)
            .order_by(favourites.c.created_at.desc())
        )
        return [(favourite, house) for favourite, house in self.session.execute(stmt)]


class SqlReviews(InSession, Reviews):
    """Reviews in the transaction's session."""

    def by(self, house_id: uuid.UUID, tenant_id: uuid.UUID) -> Review | None:
        """The tenant's review of the house, if any."""
        stmt = select(Review).where(reviews.c.house_id == house_id, reviews.c.tenant_id == tenant_id)
        return self.session.scalars(stmt).first()

    def add(self, review: Review) -> None:
        """Add and flush."""
        self._write(review)

    def of_house(self, house_id: uuid.UUID, order: Order, window: Window) -> Found[Review]:
        """One window of the house's reviews."""
        return self._found(select(Review), reviews, {"house_id": house_id}, order, window)

    def rating(self, house_id: uuid.UUID) -> tuple[int, float | None]:
        """How many reviews the house has and their mean rating."""
        stmt = select(func.count(reviews.c.id), func.avg(reviews.c.rating)).where(reviews.c.house_id == house_id)
        count, average = self.session.execute(stmt).one()
        return int(count), float(average) if average is not None else None


class SqlInbox(InSession, Inbox):
    """The kernel's processed-messages table, written in the transaction's session."""

    def claim(self, consumer: str, message_id: str) -> bool:
        """Claim the message in this transaction; False if a committed transaction claimed it before."""
        return claim_message(self.session, consumer, message_id)
