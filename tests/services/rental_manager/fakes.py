"""An in-memory unit of work for the rental handlers' unit tests: repositories over dicts, an outbox list."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, date, datetime

from pydantic import BaseModel
from rental_manager.adapters.orm import Bill, Payment
from rental_manager.domain.model import BillStatus
from rental_manager.service.unit import Actor, Bills, LeaseTerms, RentalTopics, UnitOfWork

OWING = (BillStatus.ISSUED, BillStatus.PARTIALLY_PAID, BillStatus.OVERDUE)


class FakeBills(Bills):
    """Bills and payments in dicts; who sees what follows the service's rule (tenants theirs, landlords their
    houses', admins all), with each house's landlord given by `landlords`."""

    def __init__(self, landlords: dict[uuid.UUID, uuid.UUID]) -> None:
        self.landlords = landlords
        self.bills: dict[uuid.UUID, Bill] = {}
        self.payments: list[Payment] = []

    def _visible(self, actor: Actor, bill: Bill) -> bool:
        if actor.is_admin:
            return True
        return actor.id in (bill.tenant_id, self.landlords.get(bill.house_id))

    def get(self, actor: Actor, bill_id: uuid.UUID, *, lock: bool = False) -> Bill | None:
        """The bill if the actor may see it."""
        bill = self.bills.get(bill_id)
        return bill if bill is not None and self._visible(actor, bill) else None

    def payment_by_reference(self, bill_id: uuid.UUID, reference: str) -> Payment | None:
        """The payment recorded on the bill under this reference, if any."""
        return next((p for p in self.payments if p.bill_id == bill_id and p.reference == reference), None)

    def add_payment(self, payment: Payment) -> None:
        """Append to the ledger."""
        self.payments.append(payment)

    def owing(
        self, actor: Actor, *, lease_ids: Collection[uuid.UUID] = (), bill_ids: Collection[uuid.UUID] = ()
    ) -> list[Bill]:
        """The visible bills still owed, of these leases or with these ids."""
        return [
            b
            for b in self.bills.values()
            if self._visible(actor, b)
            and b.status in OWING
            and (not lease_ids or b.lease_id in lease_ids)
            and (not bill_ids or b.id in bill_ids)
            and (lease_ids or bill_ids)
        ]


class FakeUnitOfWork(UnitOfWork):
    """One 'transaction' in memory: `events` holds what was emitted, with its key."""

    def __init__(self, bills: FakeBills, today: date = date(2026, 3, 1)) -> None:
        self.topics = RentalTopics()
        self.today = today
        self.terms = LeaseTerms()
        self.now = datetime(today.year, today.month, today.day, 12, tzinfo=UTC)
        self.bills = bills
        self.emitted: list[object] = []
        self.events: list[tuple[BaseModel, str]] = []

    def emit(self, event: BaseModel, *, key: uuid.UUID | str, subject: uuid.UUID | str | None = None) -> None:
        """Keep the event and its key."""
        self.emitted.append(event)
        self.events.append((event, str(key)))
