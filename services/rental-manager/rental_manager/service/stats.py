"""Statistics for landlords (over their houses) and admins (over all, or one landlord's)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

from rental_manager.domain.billing import month_end, month_start, next_month
from rental_manager.domain.model import Role
from rental_manager.service.access import require
from rental_manager.service.schemas import MonthStats, Stats
from rental_manager.service.unit import Actor, UnitOfWork


def _months(today: date, count: int) -> list[date]:
    first = month_start(today)
    out = [first]
    for _ in range(count - 1):
        out.append(month_start(out[-1] - timedelta(days=1)))
    return sorted(out)


def statistics(uow: UnitOfWork, actor: Actor | None, months: int = 12, landlord_id: uuid.UUID | None = None) -> Stats:
    """Occupancy today and per month, income received per month, and what is overdue now."""
    who = require(actor, Role.LANDLORD, Role.ADMIN)
    owner = who.id if not who.is_admin else landlord_id
    n_houses = uow.reports.house_count(owner)
    window = _months(uow.today, months)
    occupied_today, let_days = _occupancy(uow, owner, window)
    income, billed = _income(uow, owner, window[0]), _billed(uow, owner, window[0])
    overdue = [bill.outstanding_cents for bill, _title in uow.reports.overdue(owner)]
    rows = [
        MonthStats(
            month=month.strftime("%Y-%m"),
            occupancy_rate=_rate(let_days[month], n_houses * (next_month(month) - month).days),
            income_cents=income[month],
            billed_cents=billed[month],
        )
        for month in window
    ]
    return Stats(
        houses=n_houses,
        occupied_today=occupied_today,
        occupancy_rate_today=_rate(occupied_today, n_houses),
        overdue_bills=len(overdue),
        overdue_cents=sum(overdue),
        months=rows,
    )


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _occupancy(uow: UnitOfWork, owner: uuid.UUID | None, window: list[date]) -> tuple[int, dict[date, int]]:
    """How many of the houses are let today, and how many house-days are let in each month of the window."""
    spans = uow.reports.lease_spans(owner, window[0], month_end(window[-1]))
    occupied_today = len({house for house, period in spans if period.start <= uow.today <= period.end})
    let_days: dict[date, int] = defaultdict(int)
    for _house, period in spans:
        for month in window:
            lo, hi = max(period.start, month), min(period.end, month_end(month))
            if lo <= hi:
                let_days[month] += (hi - lo).days + 1
    return occupied_today, let_days


def _income(uow: UnitOfWork, owner: uuid.UUID | None, first: date) -> dict[date, int]:
    """Payments received on the houses per month since `first`."""
    income: dict[date, int] = defaultdict(int)
    for paid_at, amount in uow.reports.payments_since(owner, datetime.combine(first, time.min, tzinfo=UTC)):
        income[month_start(paid_at.date())] += amount
    return income


def _billed(uow: UnitOfWork, owner: uuid.UUID | None, first: date) -> dict[date, int]:
    """Rent billed (not cancelled) on the houses per month since `first`."""
    billed: dict[date, int] = defaultdict(int)
    for period_start, amount in uow.reports.rent_billed_since(owner, first):
        billed[month_start(period_start)] += amount
    return billed
