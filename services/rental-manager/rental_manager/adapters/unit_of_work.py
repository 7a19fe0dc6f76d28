"""The SQLAlchemy unit of work: a session inside one transaction, its repositories, and its outbox."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel
from quartet_contracts.registry import ce_type_of
from quartet_shared.tracing import current_traceparent
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from rental_manager.adapters.orm import OutboxMessage, viewings
from rental_manager.adapters.reports import SqlDirectory, SqlReports
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
from rental_manager.domain.entities import Viewing
from rental_manager.domain.errors import RuleViolation
from rental_manager.service.errors import Conflict, TryAgain
from rental_manager.service.unit import LeaseTerms, RentalTopics, UnitOfWork

RETRYABLE = {"40001", "40P01"}  # serialization failure, deadlock detected
EXCLUSION_VIOLATION = "23P01"
UNIQUE_VIOLATION = "23505"


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
        self.viewings = SqlScoped(session, Viewing, viewings)
        self.applications = SqlApplications(session)
        self.leases = SqlLeases(session)
        self.repairs = SqlRepairs(session)
        self.announcements = SqlAnnouncements(session)
        self.favourites = SqlFavourites(session)
        self.reviews = SqlReviews(session)
        self.reports = SqlReports(session)
        self.directory = SqlDirectory(session)
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


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


class SqlTransactions:
    """The service's `UnitOfWorkFactory` on an engine: each call opens a session in a transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def __call__(self, topics: RentalTopics, today: date, terms: LeaseTerms) -> Iterator[UnitOfWork]:
        """A unit of work committed when the block ends, rolled back if it raises; database errors translated."""
        try:
            with Session(self.engine, expire_on_commit=False, autoflush=True) as session, session.begin():
                yield SqlUnitOfWork(session, topics, today, terms)
        except IntegrityError as exc:
            state = _sqlstate(exc)
            if state == EXCLUSION_VIOLATION:
                raise RuleViolation("lease_overlap", "the house is already let for some of those days") from exc
            if state == UNIQUE_VIOLATION or "UNIQUE" in str(exc.orig):
                raise Conflict("a concurrent request created the same thing first") from exc
            raise Conflict("the change conflicts with the current data") from exc
        except DBAPIError as exc:
            if _sqlstate(exc) in RETRYABLE:
                raise TryAgain(exc) from exc
            raise
