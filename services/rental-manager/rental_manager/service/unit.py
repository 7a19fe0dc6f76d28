"""The unit of work: one database transaction, the events it writes to the outbox, and who is acting."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel
from quartet_contracts.registry import ce_type_of
from quartet_contracts.schemas.rental import COMMANDS, EVENTS
from sqlalchemy.orm import Session

from rental_manager.domain.model import Party, Role
from rental_manager.orm import OutboxMessage


@dataclass(frozen=True)
class Actor:
    """The authenticated caller."""

    id: uuid.UUID
    role: Role

    @property
    def is_admin(self) -> bool:
        """True for admins."""
        return self.role is Role.ADMIN

    @property
    def party(self) -> Party:
        """The side of a lease this actor acts for (admins act for the landlord)."""
        return Party.TENANT if self.role is Role.TENANT else Party.LANDLORD


# The service acting on its own behalf (the scheduled billing run, creating the configured admin).
SYSTEM = Actor(uuid.UUID(int=0), Role.ADMIN)


@dataclass(frozen=True)
class RentalTopics:
    """The rental topics, optionally prefixed (tests keep theirs apart)."""

    events: str = EVENTS
    commands: str = COMMANDS

    @classmethod
    def of(cls, prefix: str = "") -> RentalTopics:
        """Topics named `prefix` + the contract's names."""
        return cls(prefix + EVENTS, prefix + COMMANDS)


@dataclass(frozen=True)
class LeaseTerms:
    """The terms a newly signed lease gets: the rent's due day and the late-fee rule."""

    due_day: int = 1
    grace_days: int = 5
    late_fee_flat_cents: int = 2_500
    late_fee_percent_bps: int = 500
    late_fee_cap_cents: int | None = None


@dataclass
class UnitOfWork:
    """A session inside one transaction; `emit` adds an event to the outbox of that same transaction."""

    session: Session
    topics: RentalTopics
    today: date
    terms: LeaseTerms = field(default_factory=LeaseTerms)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    emitted: list[OutboxMessage] = field(default_factory=list)

    def emit(self, event: BaseModel, *, key: uuid.UUID | str, subject: uuid.UUID | str | None = None) -> None:
        """Write `event` to the outbox; its row id becomes the event's `ce_id`."""
        stamp = datetime.now(UTC)
        if self.emitted and stamp <= self.emitted[-1].created_at:
            # Strictly increasing within a transaction, so the relay keeps the events in the order written.
            stamp = self.emitted[-1].created_at + timedelta(microseconds=1)
        row = OutboxMessage(
            id=uuid.uuid4(),
            topic=self.topics.events,
            key=str(key),
            ce_type=ce_type_of(event),
            subject=str(subject) if subject is not None else None,
            payload=event.model_dump(mode="json"),
            created_at=stamp,
            attempts=0,
        )
        self.session.add(row)
        self.emitted.append(row)
