"""Statistics for landlords (over their houses) and admins (over all, or one landlord's)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ScalarSelect, func, select

from rental_manager.adapters.orm import Bill, House, Lease, Payment
from rental_manager.domain.billing import month_end, month_start, next_month
from rental_manager.domain.model import BillStatus, HouseStatus, Role
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
    houses_q = select(House.id).where(House.status != HouseStatus.DRAFT)
    owner = who.id if not who.is_admin else landlord_id
    if owner is not None:
        houses_q = houses_q.where(House.landlord_id == owner)
    house_ids = houses_q.scalar_subquery()
    n_houses = uow.session.scalar(select(func.count()).select_from(houses_q.subquery())) or 0
    window = _months(uow.today, months)
    occupied_today, let_days = _occupancy(uow, house_ids, window)
    income, billed = _income(uow, house_ids, window[0]), _billed(uow, house_ids, window[0])
    overdue_bills, overdue_cents = uow.session.execute(
        select(
            func.count(Bill.id), func.coalesce(func.sum(Bill.amount_cents + Bill.late_fee_cents - Bill.paid_cents), 0)
        ).where(Bill.house_id.in_(house_ids), Bill.status == BillStatus.OVERDUE)
    ).one()
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
        overdue_bills=int(overdue_bills),
        overdue_cents=int(overdue_cents),
        months=rows,
    )


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _occupancy(uow: UnitOfWork, house_ids: ScalarSelect[uuid.UUID], window: list[date]) -> tuple[int, dict[date, int]]:
    """How many of the houses are let today, and how many house-days are let in each month of the window."""
    first, last = window[0], month_end(window[-1])
    leases = uow.session.execute(
        select(Lease.house_id, Lease.start_date, Lease.end_date).where(
            Lease.house_id.in_(house_ids),
            Lease.end_date >= Lease.start_date,
            Lease.start_date <= last,
            Lease.end_date >= first,
        )
    ).all()
    occupied_today = len({h for h, s, e in leases if s <= uow.today <= e})
    let_days: dict[date, int] = defaultdict(int)
    for _house, start, end in leases:
        for month in window:
            lo, hi = max(start, month), min(end, month_end(month))
            if lo <= hi:
                let_days[month] += (hi - lo).days + 1
    return occupied_today, let_days


def _income(uow: UnitOfWork, house_ids: ScalarSelect[uuid.UUID], first: date) -> dict[date, int]:
    """Payments received on the houses per month since `first`."""
    income: dict[date, int] = defaultdict(int)
    paid = uow.session.execute(
        select(Payment.paid_at, Payment.amount_cents).where(
            Payment.house_id.in_(house_ids), Payment.paid_at >= _start_of(first)
        )
    ).all()
    for paid_at, amount in paid:
        income[month_start(paid_at.date())] += amount
    return income


def _billed(uow: UnitOfWork, house_ids: ScalarSelect[uuid.UUID], first: date) -> dict[date, int]:
    """Rent billed (not cancelled) on the houses per month since `first`."""
    billed: dict[date, int] = defaultdict(int)
    for period_start, amount in uow.session.execute(
        select(Bill.period_start, Bill.amount_cents).where(
            Bill.house_id.in_(house_ids),
            Bill.kind == "rent",
            Bill.status != BillStatus.CANCELLED,
            Bill.period_start >= first,
        )
    ):
        billed[month_start(period_start)] += amount
    return billed


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)
