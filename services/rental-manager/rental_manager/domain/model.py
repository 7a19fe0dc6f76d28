"""Rental states and the transitions allowed between them, and the rules about dates that hold for leases."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import TypeVar

from rental_manager.domain.errors import ForbiddenMove, InvalidTransition, InvalidValue, RuleViolation

S = TypeVar("S", bound=StrEnum)


class Role(StrEnum):
    """Who a user is: admins see everything, landlords their houses, tenants their own affairs."""

    ADMIN = "admin"
    LANDLORD = "landlord"
    TENANT = "tenant"


class Party(StrEnum):
    """Which side of a lease acts in a transition (an admin acts as the landlord's side)."""

    TENANT = "tenant"
    LANDLORD = "landlord"
    SYSTEM = "system"


class HouseStatus(StrEnum):
    """A house's listing state; occupancy comes from its leases, not from this."""

    DRAFT = "draft"
    LISTED = "listed"
    UNLISTED = "unlisted"
    ARCHIVED = "archived"


class ViewingStatus(StrEnum):
    """A viewing appointment's state."""

    REQUESTED = "requested"
    CONFIRMED = "confirmed"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class ApplicationStatus(StrEnum):
    """A rental application's state."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class LeaseStatus(StrEnum):
    """A lease's state: renewals keep it active with a later end."""

    ACTIVE = "active"
    ENDED = "ended"
    TERMINATED = "terminated"


class BillStatus(StrEnum):
    """A bill's state; overdue bills may still be paid (partially or in full)."""

    ISSUED = "issued"
    PARTIALLY_PAID = "partially_paid"
    OVERDUE = "overdue"
    PAID = "paid"
    CANCELLED = "cancelled"


class MaintenanceStatus(StrEnum):
    """A maintenance request's state."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class StateMachine:
    """The allowed transitions of one entity, each with the parties that may make it."""

    entity: str
    transitions: Mapping[tuple[str, str], frozenset[Party]]

    def check(self, current: StrEnum, target: StrEnum, party: Party = Party.SYSTEM) -> None:
        """Raise InvalidTransition if no one may make this move, ForbiddenMove if `party` may not.

        The system (billing runs, automatic rejections) may make any listed move; people only their own.
        """
        allowed = self.transitions.get((current.value, target.value))
        if allowed is None:
            raise InvalidTransition(self.entity, current.value, target.value)
        if party is not Party.SYSTEM and party not in allowed:
            raise ForbiddenMove(self.entity, current.value, target.value, party.value)

    def targets(self, current: StrEnum, party: Party) -> list[str]:
        """Where `party` may move the entity from `current` (for user interfaces)."""
        return sorted(t for (f, t), who in self.transitions.items() if f == current.value and party in who)


def _machine(entity: str, rows: Iterable[tuple[StrEnum, StrEnum, Iterable[Party]]]) -> StateMachine:
    return StateMachine(entity, {(a.value, b.value): frozenset(p) for a, b, p in rows})


T, L, SYS = Party.TENANT, Party.LANDLORD, Party.SYSTEM
H, V, A, LS, B, M = HouseStatus, ViewingStatus, ApplicationStatus, LeaseStatus, BillStatus, MaintenanceStatus

HOUSE = _machine(
    "house",
    [
        (H.DRAFT, H.LISTED, [L]),
        (H.UNLISTED, H.LISTED, [L]),
        (H.LISTED, H.UNLISTED, [L]),
        (H.DRAFT, H.ARCHIVED, [L]),
        (H.LISTED, H.ARCHIVED, [L]),
        (H.UNLISTED, H.ARCHIVED, [L]),
    ],
)
VIEWING = _machine(
    "viewing",
    [
        (V.REQUESTED, V.CONFIRMED, [L]),
        (V.REQUESTED, V.DECLINED, [L]),
        (V.REQUESTED, V.CANCELLED, [T, L]),
        (V.CONFIRMED, V.CANCELLED, [T, L]),
        (V.CONFIRMED, V.COMPLETED, [L]),
    ],
)
APPLICATION = _machine(
    "application",
    [
        (A.PENDING, A.APPROVED, [L]),
        (A.PENDING, A.REJECTED, [L, SYS]),
        (A.PENDING, A.WITHDRAWN, [T]),
    ],
)
LEASE = _machine(
    "lease",
    [
        (LS.ACTIVE, LS.ACTIVE, [L]),  # a renewal
        (LS.ACTIVE, LS.TERMINATED, [T, L]),
        (LS.ACTIVE, LS.ENDED, [SYS]),
    ],
)
BILL = _machine(
    "bill",
    [
        (B.ISSUED, B.PARTIALLY_PAID, [SYS]),
        (B.ISSUED, B.PAID, [SYS]),
        (B.ISSUED, B.OVERDUE, [SYS]),
        (B.ISSUED, B.CANCELLED, [SYS]),
        (B.PARTIALLY_PAID, B.PARTIALLY_PAID, [SYS]),
        (B.PARTIALLY_PAID, B.PAID, [SYS]),
        (B.PARTIALLY_PAID, B.OVERDUE, [SYS]),
        (B.OVERDUE, B.OVERDUE, [SYS]),
        (B.OVERDUE, B.PAID, [SYS]),
    ],
)
MAINTENANCE = _machine(
    "maintenance request",
    [
        (M.OPEN, M.ACKNOWLEDGED, [L]),
        (M.OPEN, M.REJECTED, [L]),
        (M.OPEN, M.CANCELLED, [T]),
        (M.ACKNOWLEDGED, M.IN_PROGRESS, [L]),
        (M.ACKNOWLEDGED, M.REJECTED, [L]),
        (M.ACKNOWLEDGED, M.CANCELLED, [T]),
        (M.IN_PROGRESS, M.RESOLVED, [L]),
        (M.RESOLVED, M.CLOSED, [T, L]),
        (M.RESOLVED, M.IN_PROGRESS, [T]),  # the tenant reopens: the fix did not hold
    ],
)


@dataclass(frozen=True)
class Period:
    """A closed range of days, first and last included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise InvalidValue("end_date", f"the end {self.end} is before the start {self.start}")

    def overlaps(self, other: Period) -> bool:
        """True when the two periods share at least one day."""
        return self.start <= other.end and other.start <= self.end

    @property
    def days(self) -> int:
        """Days in the period, both ends included."""
        return (self.end - self.start).days + 1


MAX_LEASE_DAYS = 366 * 10


def lease_period(start: date, end: date) -> Period:
    """A lease's dates, checked: at least one day and at most ten years."""
    period = Period(start, end)
    if period.days > MAX_LEASE_DAYS:
        raise InvalidValue("end_date", "a lease may run for at most ten years")
    return period


@dataclass(frozen=True)
class PendingApplication:
    """What approving needs to know about another pending application on the same house."""

    id: str
    period: Period


def approval_outcome(candidate: Period, leases: Iterable[Period], pending: Iterable[PendingApplication]) -> list[str]:
    """Check that `candidate` fits between the house's leases; return the pending applications it displaces.

    Raises RuleViolation when a lease already covers one of its days: the house would be let twice.
    """
    for lease in leases:
        if candidate.overlaps(lease):
            raise RuleViolation(
                "lease_overlap",
                f"the house is already let from {lease.start} to {lease.end}, which overlaps "
                f"{candidate.start} to {candidate.end}",
            )
    return [p.id for p in pending if p.period.overlaps(candidate)]


def renewal_end(current: Period, new_end: date, others: Iterable[Period]) -> Period:
    """The renewed period, if `new_end` extends the lease without running into another lease of the house."""
    if new_end <= current.end:
        raise InvalidValue("end_date", f"a renewal must end after the current end {current.end}")
    renewed = lease_period(current.start, new_end)
    for other in others:
        if renewed.overlaps(other):
            raise RuleViolation(
                "lease_overlap", f"the house is let from {other.start} to {other.end}; the renewal would overlap it"
            )
    return renewed


def termination_end(current: Period, last_day: date) -> date:
    """The new last day of a lease ended early; before its start it never begins (an empty lease)."""
    if last_day >= current.end:
        raise InvalidValue("end_date", f"an early termination must end before the current end {current.end}")
    if last_day < current.start - timedelta(days=1):
        raise InvalidValue("end_date", f"the last day cannot be before {current.start - timedelta(days=1)}")
    return last_day


def available_from(floor: date, lease_ends: Iterable[date]) -> date:
    """The first day a house is free for an open-ended stay: after its floor and its last lease."""
    latest = max((end + timedelta(days=1) for end in lease_ends), default=floor)
    return max(floor, latest)


def tenant_may_review(lease_periods: Iterable[Period], today: date) -> bool:
    """Only tenants of a current or past lease (one that has started) may review a house."""
    return any(p.start <= today and p.days > 0 for p in lease_periods)
