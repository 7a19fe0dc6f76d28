"""Bills and payments in integer cents: monthly periods, proration, the late-fee rule and partial payments.

Rent is billed per calendar month. A month the lease covers only partly is prorated by days
(rent × days let ÷ days in the month, rounded half up to the cent). A bill is due on the lease's due day
of its month, or on the first day it covers if that is later. It becomes overdue when anything is still
owed after the grace days; at that moment a late fee is charged once: a flat part plus a percentage of
what is still owed, capped. Payments may be partial; they never exceed what is owed.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import date, timedelta

from rental_manager.domain.errors import InvalidTransition, InvalidValue, RuleViolation
from rental_manager.domain.model import BILL, BillStatus, Period

BASIS_POINTS = 10_000


def div_round_half_up(numerator: int, denominator: int) -> int:
    """Integer division rounding halves away from zero (for non-negative amounts: up)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(numerator, denominator)
    return quotient + (1 if 2 * remainder >= denominator else 0)


def month_start(day: date) -> date:
    """The first day of `day`'s month."""
    return day.replace(day=1)


def month_end(day: date) -> date:
    """The last day of `day`'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def next_month(day: date) -> date:
    """The first day of the month after `day`'s."""
    return month_end(day) + timedelta(days=1)


@dataclass(frozen=True)
class LateFeeRule:
    """Charged once when a bill turns overdue: flat + percent (basis points) of what is owed, at most `cap`."""

    grace_days: int = 5
    flat_cents: int = 0
    percent_bps: int = 500
    cap_cents: int | None = None

    def __post_init__(self) -> None:
        if self.grace_days < 0:
            raise InvalidValue("grace_days", "grace days cannot be negative")
        if self.flat_cents < 0:
            raise InvalidValue("late_fee_flat_cents", "a late fee cannot be negative")
        if not 0 <= self.percent_bps <= BASIS_POINTS:
            raise InvalidValue("late_fee_percent_bps", "the late-fee percentage must be 0 to 10000 basis points")
        if self.cap_cents is not None and self.cap_cents < 0:
            raise InvalidValue("late_fee_cap_cents", "a late-fee cap cannot be negative")

    def fee(self, owed_cents: int) -> int:
        """The fee for a bill on which `owed_cents` is still owed when it turns overdue."""
        if owed_cents <= 0:
            return 0
        fee = self.flat_cents + div_round_half_up(owed_cents * self.percent_bps, BASIS_POINTS)
        return fee if self.cap_cents is None else min(fee, self.cap_cents)

    def overdue_after(self, due: date) -> date:
        """The last day a bill due on `due` can be paid without a fee; it is overdue the day after."""
        return due + timedelta(days=self.grace_days)


@dataclass(frozen=True)
class PlannedBill:
    """A rent bill a lease owes for one month (or the part of it the lease covers)."""

    period: Period
    due_date: date
    amount_cents: int


def prorate(monthly_cents: int, period: Period) -> int:
    """The rent for `period`, which lies inside one calendar month: all of it, or its share by days."""
    if month_start(period.start) != month_start(period.end):
        raise ValueError("a billing period lies inside one calendar month")
    days_in_month = calendar.monthrange(period.start.year, period.start.month)[1]
    if period.days == days_in_month:
        return monthly_cents
    return div_round_half_up(monthly_cents * period.days, days_in_month)


def due_date(period: Period, due_day: int) -> date:
    """The lease's due day in the period's month, clamped to the month, and never before the period starts."""
    last = month_end(period.start).day
    return max(period.start, period.start.replace(day=min(due_day, last)))


def rent_bills(lease: Period, monthly_cents: int, due_day: int, through: date) -> list[PlannedBill]:
    """Every monthly bill of `lease` whose period has begun by `through` (what a billing run issues)."""
    if not 1 <= due_day <= 28:
        raise InvalidValue("due_day", "the due day must be 1 to 28")
    if monthly_cents < 0:
        raise InvalidValue("monthly_rent_cents", "rent cannot be negative")
    bills: list[PlannedBill] = []
    start = lease.start
    while start <= lease.end and start <= through:
        period = Period(start, min(month_end(start), lease.end))
        bills.append(PlannedBill(period, due_date(period, due_day), prorate(monthly_cents, period)))
        start = next_month(start)
    return bills


@dataclass(frozen=True)
class BillState:
    """What a bill owes and has been paid; transitions return a new state."""

    status: BillStatus
    amount_cents: int
    late_fee_cents: int = 0
    paid_cents: int = 0

    @property
    def total_cents(self) -> int:
        """Rent (or deposit) plus any late fee."""
        return self.amount_cents + self.late_fee_cents

    @property
    def outstanding_cents(self) -> int:
        """What is still owed."""
        return self.total_cents - self.paid_cents

    @property
    def payable(self) -> bool:
        """True while the bill takes a payment: something is owed and it is neither paid nor cancelled."""
        return self.status not in (BillStatus.PAID, BillStatus.CANCELLED) and self.outstanding_cents > 0

    def pay(self, amount_cents: int) -> BillState:
        """Record a payment of `amount_cents` (partial allowed, never more than is owed)."""
        if amount_cents <= 0:
            raise InvalidValue("amount_cents", "a payment must be a positive number of cents")
        if self.status in (BillStatus.PAID, BillStatus.CANCELLED):
            raise InvalidTransition("bill", self.status.value, "paid", f"a {self.status.value} bill takes no payment")
        if amount_cents > self.outstanding_cents:
            raise RuleViolation(
                "overpayment", f"the payment of {amount_cents} cents exceeds the {self.outstanding_cents} cents owed"
            )
        paid = self.paid_cents + amount_cents
        if paid == self.total_cents:
            target = BillStatus.PAID
        elif self.status is BillStatus.OVERDUE:
            target = BillStatus.OVERDUE  # a part-payment does not cure the arrears
        else:
            target = BillStatus.PARTIALLY_PAID
        BILL.check(self.status, target)
        return replace(self, status=target, paid_cents=paid)

    def overdue(self, due: date, today: date, rule: LateFeeRule) -> BillState | None:
        """The state once overdue on `today`, with its late fee; None if it is not (or already) overdue."""
        if self.status not in (BillStatus.ISSUED, BillStatus.PARTIALLY_PAID):
            return None
        if today <= rule.overdue_after(due) or self.outstanding_cents <= 0:
            return None
        BILL.check(self.status, BillStatus.OVERDUE)
        return replace(self, status=BillStatus.OVERDUE, late_fee_cents=rule.fee(self.outstanding_cents))

    def cancel(self) -> BillState:
        """Cancel a bill nobody has paid anything on (a period after an early termination)."""
        if self.paid_cents > 0:
            raise RuleViolation("bill_has_payments", "a bill with payments cannot be cancelled")
        BILL.check(self.status, BillStatus.CANCELLED)
        return replace(self, status=BillStatus.CANCELLED)
