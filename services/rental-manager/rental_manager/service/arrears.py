"""Arrears follow-up for landlords and admins: overdue bills by age, and the houses that owe the most.

What is owed comes from the domain (`BillState.outstanding_cents`, late fee included); this module only
groups the overdue bills the caller may see: a landlord's own houses, every house (or one landlord's) for
an admin.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass

from rental_manager.domain.model import Role
from rental_manager.service.access import require
from rental_manager.service.unit import Actor, UnitOfWork

# Days past the due date: the usual ageing columns of a rent ledger.
BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-30 days", 0, 30),
    ("31-60 days", 31, 60),
    ("61-90 days", 61, 90),
    ("over 90 days", 91, None),
)


@dataclass(frozen=True)
class AgeBucket:
    """Overdue bills whose due date lies a given number of days back."""

    label: str
    bills: int
    cents: int


@dataclass(frozen=True)
class HouseArrears:
    """What one house's tenants owe on overdue bills."""

    house_id: uuid.UUID
    title: str
    bills: int
    cents: int


@dataclass(frozen=True)
class Arrears:
    """Overdue bills by age and by house (the houses owing most first)."""

    buckets: list[AgeBucket]
    houses: list[HouseArrears]


def bucket_of(days_late: int) -> str:
    """The ageing column a bill `days_late` days past its due date falls in."""
    for label, low, high in BUCKETS:
        if days_late >= low and (high is None or days_late <= high):
            return label
    return BUCKETS[0][0]


def arrears(uow: UnitOfWork, actor: Actor | None, landlord_id: uuid.UUID | None = None, top: int = 8) -> Arrears:
    """Overdue bills over the caller's houses, aged and per house."""
    who = require(actor, Role.LANDLORD, Role.ADMIN)
    owner = who.id if not who.is_admin else landlord_id
    by_age: dict[str, list[int]] = {label: [0, 0] for label, _, _ in BUCKETS}
    by_house: dict[uuid.UUID, list[int]] = defaultdict(lambda: [0, 0])
    titles: dict[uuid.UUID, str] = {}
    for bill, title in uow.reports.overdue(owner):
        owed = bill.outstanding_cents
        age = by_age[bucket_of((uow.today - bill.due_date).days)]
        age[0], age[1] = age[0] + 1, age[1] + owed
        house = by_house[bill.house_id]
        house[0], house[1] = house[0] + 1, house[1] + owed
        titles[bill.house_id] = title
    worst = sorted(by_house.items(), key=lambda item: (-item[1][1], str(item[0])))[:top]
    return Arrears(
        buckets=[AgeBucket(label, n, c) for label, (n, c) in by_age.items()],
        houses=[HouseArrears(h, titles[h], n, c) for h, (n, c) in worst],
    )
