"""Bill generation, late fees and partial payments by worked examples (pure domain, no I/O)."""

from __future__ import annotations

from datetime import date

import pytest
from rental_manager.domain.billing import (
    BillState,
    LateFeeRule,
    div_round_half_up,
    due_date,
    prorate,
    rent_bills,
)
from rental_manager.domain.errors import InvalidTransition, InvalidValue, RuleViolation
from rental_manager.domain.model import BillStatus, Period

RULE = LateFeeRule(grace_days=5, flat_cents=2_500, percent_bps=500)


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(10, 4, 3), (9, 4, 2), (1_700_000, 31, 54_839), (6, 4, 2), (5, 10, 1), (4, 10, 0), (0, 7, 0)],
)
def test_division_rounds_halves_up(numerator: int, denominator: int, expected: int) -> None:
    assert div_round_half_up(numerator, denominator) == expected


def test_a_full_month_bills_the_whole_rent_on_the_due_day() -> None:
    # Lease for 2025, rent 1,200.00, due on the 1st: January's bill is the full rent, due 1 January.
    bills = rent_bills(Period(date(2025, 1, 1), date(2025, 12, 31)), 120_000, 1, date(2025, 1, 1))
    assert len(bills) == 1
    assert bills[0].period == Period(date(2025, 1, 1), date(2025, 1, 31))
    assert bills[0].amount_cents == 120_000
    assert bills[0].due_date == date(2025, 1, 1)


def test_a_lease_starting_mid_month_pays_its_share_by_days() -> None:
    # From 15 January: 17 of January's 31 days of a 1,000.00 rent = 548.3870... -> 548.39, due on its first day.
    [first] = rent_bills(Period(date(2025, 1, 15), date(2025, 6, 30)), 100_000, 1, date(2025, 1, 20))
    assert first.period == Period(date(2025, 1, 15), date(2025, 1, 31))
    assert first.amount_cents == 54_839
    assert first.due_date == date(2025, 1, 15)


def test_a_leap_february_prorates_over_29_days() -> None:
    # Ending 10 February 2024: 10 of 29 days of 870.00 = exactly 300.00.
    assert prorate(87_000, Period(date(2024, 2, 1), date(2024, 2, 10))) == 30_000
    assert prorate(87_000, Period(date(2024, 2, 1), date(2024, 2, 29))) == 87_000


def test_proration_refuses_a_period_spanning_two_months() -> None:
    with pytest.raises(ValueError, match="one calendar month"):
        prorate(100_000, Period(date(2025, 1, 20), date(2025, 2, 5)))


def test_a_billing_run_issues_every_month_begun_by_its_day_and_none_after_the_lease() -> None:
    lease = Period(date(2025, 1, 15), date(2025, 4, 10))
    by_march = rent_bills(lease, 90_000, 5, date(2025, 3, 1))
    assert [b.period.start for b in by_march] == [date(2025, 1, 15), date(2025, 2, 1), date(2025, 3, 1)]
    # Due on the 5th, but never before the period starts: 15 Jan, then 5 Feb and 5 Mar.
    assert [b.due_date for b in by_march] == [date(2025, 1, 15), date(2025, 2, 5), date(2025, 3, 5)]
    everything = rent_bills(lease, 90_000, 5, date(2030, 1, 1))
    assert len(everything) == 4
    # April: 10 of 30 days of 900.00 = 300.00.
    assert everything[-1].period == Period(date(2025, 4, 1), date(2025, 4, 10))
    assert everything[-1].amount_cents == 30_000
    assert sum(b.amount_cents for b in everything) == 49_355 + 90_000 + 90_000 + 30_000


def test_due_day_clamps_to_the_period() -> None:
    assert due_date(Period(date(2025, 2, 1), date(2025, 2, 28)), 28) == date(2025, 2, 28)
    assert due_date(Period(date(2025, 2, 20), date(2025, 2, 28)), 5) == date(2025, 2, 20)


@pytest.mark.parametrize("day", [0, 29, 31])
def test_due_day_must_exist_in_every_month(day: int) -> None:
    with pytest.raises(InvalidValue) as err:
        rent_bills(Period(date(2025, 1, 1), date(2025, 2, 1)), 1, day, date(2025, 2, 1))
    assert err.value.field == "due_day"


def test_late_fee_is_flat_plus_percent_of_what_is_owed_and_capped() -> None:
    assert RULE.fee(120_000) == 2_500 + 6_000
    assert RULE.fee(33_333) == 2_500 + 1_667  # 5 % of 333.33 = 16.6665 -> 16.67
    assert RULE.fee(0) == 0
    assert LateFeeRule(grace_days=0, flat_cents=2_500, percent_bps=500, cap_cents=5_000).fee(120_000) == 5_000


def test_a_bill_turns_overdue_the_day_after_its_grace_days_with_its_fee_charged_once() -> None:
    bill = BillState(BillStatus.ISSUED, 120_000)
    due = date(2025, 2, 1)
    assert bill.overdue(due, date(2025, 2, 6), RULE) is None  # the fifth grace day: still on time
    overdue = bill.overdue(due, date(2025, 2, 7), RULE)
    assert overdue is not None
    assert overdue.status is BillStatus.OVERDUE
    assert overdue.late_fee_cents == 8_500
    assert overdue.outstanding_cents == 128_500
    assert overdue.overdue(due, date(2025, 3, 1), RULE) is None  # never charged twice


def test_partial_payments_then_overdue_then_settled_in_full() -> None:
    # Rent 1,200.00 due 1 Feb. 500.00 paid on time; 700.00 still owed after the grace days:
    # fee 25.00 + 5 % of 700.00 = 60.00; 760.00 then settles the bill.
    bill = BillState(BillStatus.ISSUED, 120_000)
    bill = bill.pay(50_000)
    assert (bill.status, bill.paid_cents, bill.outstanding_cents) == (BillStatus.PARTIALLY_PAID, 50_000, 70_000)
    overdue = bill.overdue(date(2025, 2, 1), date(2025, 2, 7), RULE)
    assert overdue is not None
    assert (overdue.late_fee_cents, overdue.outstanding_cents) == (6_000, 76_000)
    partly = overdue.pay(26_000)
    assert partly.status is BillStatus.OVERDUE  # a part-payment does not cure arrears
    settled = partly.pay(50_000)
    assert (settled.status, settled.paid_cents, settled.outstanding_cents) == (BillStatus.PAID, 126_000, 0)


def test_a_bill_paid_in_full_before_its_grace_ends_is_never_overdue() -> None:
    paid = BillState(BillStatus.ISSUED, 80_000).pay(80_000)
    assert paid.status is BillStatus.PAID
    assert paid.overdue(date(2025, 2, 1), date(2025, 6, 1), RULE) is None


def test_overpaying_is_a_conflict_and_paying_a_settled_or_cancelled_bill_is_refused() -> None:
    bill = BillState(BillStatus.ISSUED, 10_000).pay(4_000)
    with pytest.raises(RuleViolation, match="exceeds the 6000 cents owed"):
        bill.pay(6_001)
    with pytest.raises(InvalidTransition):
        bill.pay(6_000).pay(1)
    with pytest.raises(InvalidTransition):
        BillState(BillStatus.ISSUED, 10_000).cancel().pay(100)


@pytest.mark.parametrize("amount", [0, -5])
def test_a_payment_must_be_positive(amount: int) -> None:
    with pytest.raises(InvalidValue) as err:
        BillState(BillStatus.ISSUED, 10_000).pay(amount)
    assert err.value.field == "amount_cents"


def test_only_an_untouched_issued_bill_can_be_cancelled() -> None:
    assert BillState(BillStatus.ISSUED, 10_000).cancel().status is BillStatus.CANCELLED
    with pytest.raises(RuleViolation):
        BillState(BillStatus.ISSUED, 10_000).pay(1).cancel()
    overdue = BillState(BillStatus.ISSUED, 10_000).overdue(date(2025, 1, 1), date(2025, 2, 1), RULE)
    assert overdue is not None
    with pytest.raises(InvalidTransition):
        overdue.cancel()


def test_late_fee_rule_rejects_nonsense() -> None:
    with pytest.raises(InvalidValue):
        LateFeeRule(percent_bps=10_001)
    with pytest.raises(InvalidValue):
        LateFeeRule(grace_days=-1)


def test_a_bill_is_payable_while_something_is_owed_and_it_is_open() -> None:
    assert BillState(BillStatus.ISSUED, 1_000).payable
    assert BillState(BillStatus.OVERDUE, 1_000, late_fee_cents=50, paid_cents=1_000).payable
    assert not BillState(BillStatus.PAID, 1_000, paid_cents=1_000).payable
    assert not BillState(BillStatus.CANCELLED, 1_000).payable
    assert not BillState(BillStatus.ISSUED, 0).payable
