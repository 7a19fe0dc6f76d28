"""The SQLAlchemy unit of work: a session inside one transaction, its repositories, and its outbox."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel
from quartet_contracts.registry import ce_type_of
from quartet_shared.tracing import current_traceparent
from sqlalchemy.orm import Session

from rental_manager.adapters.orm import OutboxMessage, Viewing
from rental_manager.adapters.repository import (
    SqlAnnouncements,
    SqlApplications,
    SqlBills,
    SqlFavourites,
    SqlHouses,
    SqlInbox,
    SqlLeases,
    SqlRepairs,
    SqlReviews,
    SqlScoped,
    SqlUsers,
)
from rental_manager.service.unit import LeaseTerms, RentalTopics, UnitOfWork


class SqlUnitOfWork(UnitOfWork):
    """A session inside one transaction; `emit` adds an event to the outbox of that same transaction."""

    def __init__(self, session: Session, topics: RentalTopics, today: date, terms: LeaseTerms) -> None:
        self.session = session
        self.topics = topics
        self.today = today
        self.terms = terms
        self.now = datetime.now(UTC)
        self.bills = SqlBills(session)
        self.users = SqlUsers(session)
        self.houses = SqlHouses(session)
        self.viewings = SqlScoped(session, Viewing)
        self.applications = SqlApplications(session)
        self.leases = SqlLeases(session)
        self.repairs = SqlRepairs(session)
        self.announcements = SqlAnnouncements(session)
        self.favourites = SqlFavourites(session)
        self.reviews = SqlReviews(session)
        self.inbox = SqlInbox(session)
        self.emitted: list[object] = []
        self._last: datetime | None = None

    def emit(self, event: BaseModel, *, key: uuid.UUID | str, subject: uuid.UUID | str | None = None) -> None:
        """Write `event` to the outbox; its row id becomes the event's `ce_id`."""
        stamp = datetime.now(UTC)
        if self._last is not None and stamp <= self._last:
            # Strictly increasing within a transaction, so the relay keeps the events in the order written.
            stamp = self._last + timedelta(microseconds=1)
        row = OutboxMessage(
            id=uuid.uuid4(),
            topic=self.topics.events,
            key=str(key),
            ce_type=ce_type_of(event),
            subject=str(subject) if subject is not None else None,
            payload=event.model_dump(mode="json"),
            # The relay publishes it later, from another process: the row carries this request's trace there.
            traceparent=current_traceparent(),
            created_at=stamp,
            attempts=0,
        )
        self.session.add(row)
        self.emitted.append(row)
        self._last = stamp
