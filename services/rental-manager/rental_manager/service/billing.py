"""Bills and the payments ledger, and the billing run: issue due rent bills, end leases, mark arrears overdue.

The billing run is idempotent for a given day: a bill is unique per lease, kind and period start, leases
and bills are locked while they change, and each step checks the state it finds. Running it twice, or in
two workers at once, issues every bill once.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import date

from quartet_contracts.schemas.rental import BillIssued, BillOverdue, LeaseEnded, PaymentRecorded

from rental_manager.domain.billing import LateFeeRule, rent_bills
from rental_manager.domain.entities import Bill, Lease, Payment
from rental_manager.domain.model import LEASE, BillStatus, LeaseStatus, Party, Period
from rental_manager.service.access import require
from rental_manager.service.commands import PayBill
from rental_manager.service.errors import NotFound
from rental_manager.service.paging import Order, Window, paged
from rental_manager.service.read_models import BillRecord, PaymentRecord
from rental_manager.service.schemas import Page
from rental_manager.service.unit import Actor, UnitOfWork


def bill_public(bill: Bill) -> BillRecord:
    """A bill with its totals."""
    return BillRecord.model_validate(bill)


def rule_of(lease: Lease) -> LateFeeRule:
    """The late-fee rule written into a lease."""
    return LateFeeRule(
        grace_days=lease.grace_days,
        flat_cents=lease.late_fee_flat_cents,
        percent_bps=lease.late_fee_percent_bps,
        cap_cents=lease.late_fee_cap_cents,
    )


def _bill(uow: UnitOfWork, who: Actor, bill_id: uuid.UUID, *, lock: bool = False) -> Bill:
    bill = uow.bills.get(who, bill_id, lock=lock)
    if bill is None:
        raise NotFound("bill", bill_id)
    return bill


def get_bill(uow: UnitOfWork, actor: Actor | None, bill_id: uuid.UUID) -> BillRecord:
    """A bill the caller may see."""
    return bill_public(_bill(uow, require(actor), bill_id))


def list_bills(
    uow: UnitOfWork,
    actor: Actor | None,
    status: BillStatus | None = None,
    lease_id: uuid.UUID | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[BillRecord]:
    """Bills the caller may see, most recent due date first."""
    window = Window(page, page_size)
    found = uow.bills.listed(require(actor), {"status": status, "lease_id": lease_id}, Order("due_date"), window)
    return paged(found, BillRecord, window)


def owed_by_lease(uow: UnitOfWork, actor: Actor | None, lease_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, int]:
    """What is still owed on each of these leases (over all their open bills), for those the caller may see."""
    owed: dict[uuid.UUID, int] = {}
    for bill in uow.bills.owing(require(actor), lease_ids=lease_ids):
        owed[bill.lease_id] = owed.get(bill.lease_id, 0) + bill.state.outstanding_cents
    return {lease_id: cents for lease_id, cents in owed.items() if cents}


def payable_bills(uow: UnitOfWork, actor: Actor | None, bill_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these bills the caller may see still take a payment (the domain's `BillState.payable`)."""
    return {bill.id for bill in uow.bills.owing(require(actor), bill_ids=bill_ids) if bill.state.payable}


def record_payment(uow: UnitOfWork, actor: Actor | None, data: PayBill) -> PaymentRecord:
    """Add a payment (partial allowed) to a bill; a repeated `reference` returns the payment already recorded."""
    who = require(actor)
    bill = _bill(uow, who, data.bill_id, lock=True)
    if data.reference is not None:
        earlier = uow.bills.payment_by_reference(bill.id, data.reference)
        if earlier is not None:
            return PaymentRecord.model_validate(earlier)
    after = bill.state.pay(data.amount_cents)
    bill.status, bill.paid_cents = after.status, after.paid_cents
    if after.status is BillStatus.PAID:
        bill.paid_at = uow.now
    payment = Payment(
        id=uuid.uuid4(),
        bill_id=bill.id,
        lease_id=bill.lease_id,
        house_id=bill.house_id,
        tenant_id=bill.tenant_id,
        amount_cents=data.amount_cents,
        method=data.method,
        reference=data.reference,
        recorded_by=who.id,
        paid_at=uow.now,
    )
    uow.bills.add_payment(payment)
    uow.emit(
        PaymentRecorded(
            payment_id=payment.id,
            bill_id=bill.id,
            lease_id=bill.lease_id,
            house_id=bill.house_id,
            amount_cents=payment.amount_cents,
            paid_cents=after.paid_cents,
            outstanding_cents=after.outstanding_cents,
            bill_status=after.status.value,
        ),
        key=bill.house_id,
    )
    return PaymentRecord.model_validate(payment)


def list_payments(
    uow: UnitOfWork, actor: Actor | None, bill_id: uuid.UUID | None = None, page: int = 1, page_size: int = 50
) -> Page[PaymentRecord]:
    """The ledger entries the caller may see, newest first."""
    window = Window(page, page_size)
    found = uow.bills.ledger(require(actor), {"bill_id": bill_id}, Order("paid_at"), window)
    return paged(found, PaymentRecord, window)


def issue_bill(uow: UnitOfWork, lease: Lease, kind: str, period: Period, due: date, amount_cents: int) -> Bill:
    """Issue a bill of `lease` (rent for a period, or the deposit) and its BillIssued event."""
    bill = Bill(
        id=uuid.uuid4(),
        lease_id=lease.id,
        house_id=lease.house_id,
        tenant_id=lease.tenant_id,
        kind=kind,
        period_start=period.start,
        period_end=period.end,
        due_date=due,
        amount_cents=amount_cents,
        late_fee_cents=0,
        paid_cents=0,
        status=BillStatus.ISSUED,
        issued_at=uow.now,
    )
    uow.bills.add(bill)
    uow.emit(
        BillIssued(
            bill_id=bill.id,
            lease_id=lease.id,
            house_id=lease.house_id,
            tenant_id=lease.tenant_id,
            kind="deposit" if kind == "deposit" else "rent",
            period_start=period.start,
            period_end=period.end,
            due_date=due,
            amount_cents=amount_cents,
        ),
        key=lease.house_id,
    )
    return bill


# ---- the billing run -----------------------------------------------------------------------------------


def leases_to_bill(uow: UnitOfWork, as_of: date) -> list[uuid.UUID]:
    """Active leases that have begun by `as_of` (they may owe bills or have ended)."""
    return uow.leases.begun_active(as_of)


def bill_leases(uow: UnitOfWork, lease_ids: list[uuid.UUID], as_of: date) -> tuple[int, int]:
    """Issue the rent bills these leases owe by `as_of` and end those past their last day: (issued, ended)."""
    issued = ended = 0
    for lease in uow.leases.locked(lease_ids):
        if lease.status is not LeaseStatus.ACTIVE:
            continue
        have = uow.bills.rent_periods(lease.id)
        for plan in rent_bills(
            Period(lease.start_date, lease.end_date), lease.monthly_rent_cents, lease.due_day, as_of
        ):
            if plan.period.start in have:
                continue
            issue_bill(uow, lease, "rent", plan.period, plan.due_date, plan.amount_cents)
            issued += 1
        if lease.end_date < as_of:
            LEASE.check(lease.status, LeaseStatus.ENDED, Party.SYSTEM)
            lease.status = LeaseStatus.ENDED
            lease.updated_at = uow.now
            uow.emit(
                LeaseEnded(lease_id=lease.id, house_id=lease.house_id, end_date=lease.end_date), key=lease.house_id
            )
            ended += 1
    return issued, ended


def bills_to_check(uow: UnitOfWork, as_of: date) -> list[uuid.UUID]:
    """Open bills already due by `as_of` (whether each is past its grace days is the domain's call)."""
    return uow.bills.open_due_before(as_of)


def mark_overdue(uow: UnitOfWork, bill_ids: list[uuid.UUID], as_of: date) -> int:
    """Mark the bills still owed after their grace days overdue, charging each its late fee once."""
    marked = 0
    for bill, lease in uow.bills.with_leases(bill_ids):
        after = bill.state.overdue(bill.due_date, as_of, rule_of(lease))
        if after is None:
            continue
        bill.status, bill.late_fee_cents = after.status, after.late_fee_cents
        bill.overdue_at = uow.now
        uow.emit(
            BillOverdue(
                bill_id=bill.id,
                lease_id=bill.lease_id,
                house_id=bill.house_id,
                tenant_id=bill.tenant_id,
                due_date=bill.due_date,
                late_fee_cents=after.late_fee_cents,
                outstanding_cents=after.outstanding_cents,
            ),
            key=bill.house_id,
        )
        marked += 1
    return marked
