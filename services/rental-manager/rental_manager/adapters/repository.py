"""Repositories over SQLAlchemy: the service's ports (`service.unit.Bills`) on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from rental_manager.adapters.orm import Bill, Payment
from rental_manager.domain.model import BillStatus
from rental_manager.service.access import scope
from rental_manager.service.unit import Actor, Bills

OWING = (BillStatus.ISSUED, BillStatus.PARTIALLY_PAID, BillStatus.OVERDUE)


class SqlBills(Bills):
    """Bills and payments in the transaction's session."""

    def __init__(self, session: Session) -> None:
        self.session = session

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

    def add_payment(self, payment: Payment) -> None:
        """Record a payment in the ledger (flushed, so a duplicate reference fails here)."""
        self.session.add(payment)
        self.session.flush()

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
