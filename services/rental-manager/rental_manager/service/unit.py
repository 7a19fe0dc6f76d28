"""The unit of work: one database transaction, the events it writes to the outbox, and who is acting."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Generic, TypeVar

from pydantic import BaseModel
from quartet_contracts.schemas.rental import COMMANDS, EVENTS
from sqlalchemy.orm import Session

from rental_manager.adapters.orm import (
    Announcement,
    Application,
    Bill,
    Favourite,
    House,
    Lease,
    MaintenanceRequest,
    MaintenanceUpdate,
    Payment,
    Review,
    User,
    Viewing,
)
from rental_manager.domain.model import Party, Period, Role


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


class Bills(ABC):
    """The repository of bills and of the payments ledger, as far as an actor may see them."""

    @abstractmethod
    def get(self, actor: Actor, bill_id: uuid.UUID, *, lock: bool = False) -> Bill | None:
        """The bill if the actor may see it (locked for the rest of the transaction when asked), else None."""

    @abstractmethod
    def payment_by_reference(self, bill_id: uuid.UUID, reference: str) -> Payment | None:
        """The payment already recorded on the bill under this reference, if any."""

    @abstractmethod
    def add_payment(self, payment: Payment) -> None:
        """Record a payment in the ledger."""

    @abstractmethod
    def add(self, bill: Bill) -> None:
        """Issue a new bill."""

    @abstractmethod
    def owing(
        self, actor: Actor, *, lease_ids: Collection[uuid.UUID] = (), bill_ids: Collection[uuid.UUID] = ()
    ) -> list[Bill]:
        """The bills the actor may see that are still owed, of these leases or with these ids."""


class Users(ABC):
    """The repository of accounts."""

    @abstractmethod
    def get(self, user_id: uuid.UUID) -> User | None:
        """The account with this id, if any."""

    @abstractmethod
    def by_email(self, email: str) -> User | None:
        """The account with this (normalised) e-mail address, if any."""

    @abstractmethod
    def add(self, user: User) -> None:
        """Add an account (flushed, so a duplicate address fails here)."""


class Houses(ABC):
    """The repository of houses (who may see one is the service's rule, `access.house_visible`)."""

    @abstractmethod
    def get(self, house_id: uuid.UUID, *, lock: bool = False) -> House | None:
        """The house (locked for the rest of the transaction when asked), or None."""


T = TypeVar("T")


class Scoped(ABC, Generic[T]):
    """A repository of rows that hang off a house (viewings, applications, leases, repair requests): its tenant,
    the house's landlord and admins see each one, nobody else."""

    @abstractmethod
    def get(self, actor: Actor, ident: uuid.UUID, *, lock: bool = False) -> T | None:
        """The row if the actor may see it (locked for the rest of the transaction when asked), else None."""

    @abstractmethod
    def add(self, row: T) -> None:
        """Add a new row (flushed, so a constraint it breaks fails here)."""


class Applications(Scoped[Application]):
    """Applications to rent a house."""

    @abstractmethod
    def pending_on(self, house_id: uuid.UUID, exclude: uuid.UUID | None = None) -> list[Application]:
        """The house's pending applications but `exclude`, locked for the rest of the transaction."""


class Leases(Scoped[Lease]):
    """Leases, with the questions the rules ask of a house's or an application's leases."""

    @abstractmethod
    def of_application(self, application_id: uuid.UUID) -> uuid.UUID | None:
        """The id of the lease an approved application became, if any."""

    @abstractmethod
    def periods(self, house_id: uuid.UUID, exclude: uuid.UUID | None = None) -> list[Period]:
        """The periods of the house's leases that hold days (one terminated before its start holds none)."""

    @abstractmethod
    def current(self, house_id: uuid.UUID, tenant_id: uuid.UUID, today: date) -> Lease | None:
        """The tenant's active lease of the house that has begun by `today` (the latest if several)."""

    @abstractmethod
    def active_ends(self, house_id: uuid.UUID) -> list[date]:
        """The last days of the house's active leases that hold days."""

    @abstractmethod
    def of_tenant(self, house_id: uuid.UUID, tenant_id: uuid.UUID) -> list[Lease]:
        """The tenant's leases of the house that hold days, whatever their status."""


class Repairs(Scoped[MaintenanceRequest]):
    """Maintenance requests and the history of each."""

    @abstractmethod
    def add_step(self, step: MaintenanceUpdate) -> None:
        """Append a step to a request's history."""

    @abstractmethod
    def history(self, request_id: uuid.UUID) -> list[MaintenanceUpdate]:
        """The request's steps, oldest first."""


class Announcements(ABC):
    """Published notices."""

    @abstractmethod
    def add(self, note: Announcement) -> None:
        """Publish a notice (flushed)."""


class Favourites(ABC):
    """Tenants' saved houses."""

    @abstractmethod
    def get(self, tenant_id: uuid.UUID, house_id: uuid.UUID) -> Favourite | None:
        """The tenant's saving of the house, if any."""

    @abstractmethod
    def add(self, favourite: Favourite) -> None:
        """Save a house (flushed)."""

    @abstractmethod
    def remove(self, favourite: Favourite) -> None:
        """Forget a saved house."""


class Reviews(ABC):
    """Tenants' reviews of houses."""

    @abstractmethod
    def by(self, house_id: uuid.UUID, tenant_id: uuid.UUID) -> Review | None:
        """The tenant's review of the house, if any."""

    @abstractmethod
    def add(self, review: Review) -> None:
        """Add a review (flushed, so a second one by the same tenant fails here)."""


class Inbox(ABC):
    """Which command messages a consumer has already carried out, claimed inside the transaction of the effect."""

    @abstractmethod
    def claim(self, consumer: str, message_id: str) -> bool:
        """Claim the message for this transaction: False if it was claimed before (skip the effect then)."""


class UnitOfWork(ABC):
    """One transaction: its repositories, the events it writes to the outbox, and the business day and clock.

    `session` is there for the handlers not yet behind repositories (see the layering test); handlers that
    are use only the repositories, so they run on the in-memory unit of work of the unit tests as well.
    """

    session: Session
    topics: RentalTopics
    today: date
    terms: LeaseTerms
    now: datetime
    bills: Bills
    users: Users
    houses: Houses
    viewings: Scoped[Viewing]
    applications: Applications
    leases: Leases
    repairs: Repairs
    announcements: Announcements
    favourites: Favourites
    reviews: Reviews
    inbox: Inbox
    emitted: list[object]

    @abstractmethod
    def emit(self, event: BaseModel, *, key: uuid.UUID | str, subject: uuid.UUID | str | None = None) -> None:
        """Add `event` to this transaction's outbox."""


# How the service opens a unit of work on a transaction's session (the adapters provide it).
UnitOfWorkFactory = Callable[[Session, RentalTopics, date, LeaseTerms], UnitOfWork]
