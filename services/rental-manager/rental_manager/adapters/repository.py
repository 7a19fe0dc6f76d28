"""Repositories over SQLAlchemy: the service's ports (`service.unit`) on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import date
from typing import Any, Generic, TypeVar

from quartet_shared.db import claim_message
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from rental_manager.adapters.orm import (
    Announcement,
    Application,
    Bill,
    Favourite,
    House,
    Lease,
    MaintenanceRequest,
    MaintenanceUpdate,
    Payment,
    Review,
    User,
)
from rental_manager.domain.model import ApplicationStatus, BillStatus, LeaseStatus, Period
from rental_manager.service.access import scope
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


class InSession:
    """A repository working in one transaction's session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _write(self, row: object) -> None:
        """Add a new row and flush it, so a constraint it breaks fails in the call that wrote it."""
        self.session.add(row)
        self.session.flush()


OWING = (BillStatus.ISSUED, BillStatus.PARTIALLY_PAID, BillStatus.OVERDUE)


class SqlBills(InSession, Bills):
    """Bills and payments in the transaction's session."""

    def get(self, actor: Actor, bill_id: uuid.UUID, *, lock: bool = False) -> Bill | None:
        """The bill if the actor may see it (locked for the rest of the transaction when asked), else None."""
        stmt = select(Bill).where(Bill.id == bill_id, scope(actor, Bill))
        if lock:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return self.session.scalars(stmt).first()

    def payment_by_reference(self, bill_id: uuid.UUID, reference: str) -> Payment | None:
        """The payment already recorded on the bill under this reference, if any."""
        stmt = select(Payment).where(Payment.bill_id == bill_id, Payment.reference == reference)
        return self.session.scalars(stmt).first()

    def add(self, bill: Bill) -> None:
        """Add the bill to the session (flushed with the transaction's next query or commit)."""
        self.session.add(bill)

    def add_payment(self, payment: Payment) -> None:
        """Record a payment in the ledger (flushed, so a duplicate reference fails here)."""
        self._write(payment)

    def owing(
        self, actor: Actor, *, lease_ids: Collection[uuid.UUID] = (), bill_ids: Collection[uuid.UUID] = ()
    ) -> list[Bill]:
        """The bills the actor may see that are still owed, of these leases or with these ids."""
        if not lease_ids and not bill_ids:
            return []
        stmt = select(Bill).where(scope(actor, Bill), Bill.status.in_(OWING))
        if lease_ids:
            stmt = stmt.where(Bill.lease_id.in_(lease_ids))
        if bill_ids:
            stmt = stmt.where(Bill.id.in_(bill_ids))
        return list(self.session.scalars(stmt))


class SqlUsers(InSession, Users):
    """Accounts in the transaction's session."""

    def get(self, user_id: uuid.UUID) -> User | None:
        """The account with this id, if any."""
        return self.session.get(User, user_id)

    def by_email(self, email: str) -> User | None:
        """The account with this e-mail address, if any."""
        return self.session.scalars(select(User).where(User.email == email)).first()

    def add(self, user: User) -> None:
        """Add and flush."""
        self._write(user)


class SqlHouses(InSession, Houses):
    """Houses in the transaction's session."""

    def get(self, house_id: uuid.UUID, *, lock: bool = False) -> House | None:
        """The house (locked, and re-read, for the rest of the transaction when asked), or None."""
        stmt = select(House).where(House.id == house_id)
        if lock:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return self.session.scalars(stmt).first()


class SqlScoped(InSession, Scoped[T], Generic[T]):
    """Rows of one mapped class with `house_id` and `tenant_id`, filtered by `access.scope`."""

    def __init__(self, session: Session, model: type[T]) -> None:
        super().__init__(session)
        self.model = model

    def get(self, actor: Actor, ident: uuid.UUID, *, lock: bool = False) -> T | None:
        """The row if the actor may see it (locked, and re-read, when asked), else None."""
        model: Any = self.model
        stmt: Select[Any] = select(model).where(model.id == ident, scope(actor, model))
        if lock:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return self.session.scalars(stmt).first()

    def add(self, row: T) -> None:
        """Add and flush."""
        self._write(row)


class SqlApplications(SqlScoped[Application], Applications):
    """Applications in the transaction's session."""

    def __init__(self, session: Session) -> None:
        super().__init__(session, Application)

    def pending_on(self, house_id: uuid.UUID, exclude: uuid.UUID | None = None) -> list[Application]:
        """The house's pending applications but `exclude`, locked."""
        stmt = select(Application).where(
            Application.house_id == house_id, Application.status == ApplicationStatus.PENDING
        )
        if exclude is not None:
            stmt = stmt.where(Application.id != exclude)
        return list(self.session.scalars(stmt.with_for_update()))


class SqlLeases(SqlScoped[Lease], Leases):
    """Leases in the transaction's session."""

    def __init__(self, session: Session) -> None:
        super().__init__(session, Lease)

    def of_application(self, application_id: uuid.UUID) -> uuid.UUID | None:
        """The id of the lease an approved application became, if any."""
        return self.session.scalar(select(Lease.id).where(Lease.application_id == application_id))

    def periods(self, house_id: uuid.UUID, exclude: uuid.UUID | None = None) -> list[Period]:
        """The periods of the house's leases that hold days."""
        stmt = select(Lease.start_date, Lease.end_date).where(
            Lease.house_id == house_id, Lease.end_date >= Lease.start_date
        )
        if exclude is not None:
            stmt = stmt.where(Lease.id != exclude)
        return [Period(s, e) for s, e in self.session.execute(stmt)]

    def current(self, house_id: uuid.UUID, tenant_id: uuid.UUID, today: date) -> Lease | None:
        """The tenant's latest active lease of the house that has begun by `today`."""
        return self.session.scalars(
            select(Lease)
            .where(
                Lease.house_id == house_id,
                Lease.tenant_id == tenant_id,
                Lease.status == LeaseStatus.ACTIVE,
                Lease.start_date <= today,
            )
            .order_by(Lease.start_date.desc())
        ).first()

    def active_ends(self, house_id: uuid.UUID) -> list[date]:
        """The last days of the house's active leases that hold days."""
        return list(
            self.session.scalars(
                select(Lease.end_date).where(
                    Lease.house_id == house_id,
                    Lease.status == LeaseStatus.ACTIVE,
                    Lease.end_date >= Lease.start_date,
                )
            )
        )

    def of_tenant(self, house_id: uuid.UUID, tenant_id: uuid.UUID) -> list[Lease]:
        """The tenant's leases of the house that hold days."""
        return list(
            self.session.scalars(
                select(Lease).where(
                    Lease.house_id == house_id, Lease.tenant_id == tenant_id, Lease.end_date >= Lease.start_date
                )
            )
        )


class SqlRepairs(SqlScoped[MaintenanceRequest], Repairs):
    """Maintenance requests and their history in the transaction's session."""

    def __init__(self, session: Session) -> None:
        super().__init__(session, MaintenanceRequest)

    def add_step(self, step: MaintenanceUpdate) -> None:
        """Append a step to a request's history."""
        self.session.add(step)

    def history(self, request_id: uuid.UUID) -> list[MaintenanceUpdate]:
        """The request's steps, oldest first."""
        return list(
            self.session.scalars(
                select(MaintenanceUpdate)
                .where(MaintenanceUpdate.request_id == request_id)
                .order_by(MaintenanceUpdate.created_at, MaintenanceUpdate.id)
            )
        )


class SqlAnnouncements(InSession, Announcements):
    """Notices in the transaction's session."""

    def add(self, note: Announcement) -> None:
        """Add and flush."""
        self._write(note)


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


class SqlReviews(InSession, Reviews):
    """Reviews in the transaction's session."""

    def by(self, house_id: uuid.UUID, tenant_id: uuid.UUID) -> Review | None:
        """The tenant's review of the house, if any."""
        return self.session.scalars(
            select(Review).where(Review.house_id == house_id, Review.tenant_id == tenant_id)
        ).first()

    def add(self, review: Review) -> None:
        """Add and flush."""
        self._write(review)


class SqlInbox(InSession, Inbox):
    """The kernel's processed-messages table, written in the transaction's session."""

    def claim(self, consumer: str, message_id: str) -> bool:
        """Claim the message in this transaction; False if a committed transaction claimed it before."""
        return claim_message(self.session, consumer, message_id)
