"""The unit of work: one database transaction, the events it writes to the outbox, and who is acting."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Generic, TypeVar

from pydantic import BaseModel
from quartet_contracts.schemas.rental import COMMANDS, EVENTS

from rental_manager.domain.entities import (
    Announcement,
    Application,
    Bill,
    Favourite,
    House,
    HousePhoto,
    Lease,
    MaintenanceRequest,
    MaintenanceUpdate,
    Payment,
    Review,
    User,
    Viewing,
)
from rental_manager.domain.model import Party, Period, Role
from rental_manager.service.paging import Found, Order, Window
from rental_manager.service.schemas import HouseQuery


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


T = TypeVar("T")


class Scoped(ABC, Generic[T]):
    """A repository of rows that hang off a house (viewings, applications, leases, repair requests, bills): its
    tenant, the house's landlord and admins see each one, nobody else."""

    @abstractmethod
    def get(self, actor: Actor, ident: uuid.UUID, *, lock: bool = False) -> T | None:
        """The row if the actor may see it (locked for the rest of the transaction when asked), else None."""

    @abstractmethod
    def add(self, row: T) -> None:
        """Add a new row (flushed, so a constraint it breaks fails here)."""

    @abstractmethod
    def listed(self, actor: Actor, where: Mapping[str, object], order: Order, window: Window) -> Found[T]:
        """One window of the rows the actor may see whose fields equal `where`'s values (None: any), in `order`."""


class Bills(Scoped[Bill]):
    """The repository of bills and of the payments ledger, as far as an actor may see them."""

    @abstractmethod
    def payment_by_reference(self, bill_id: uuid.UUID, reference: str) -> Payment | None:
        """The payment already recorded on the bill under this reference, if any."""

    @abstractmethod
    def add_payment(self, payment: Payment) -> None:
        """Record a payment in the ledger."""

    @abstractmethod
    def owing(
        self, actor: Actor, *, lease_ids: Collection[uuid.UUID] = (), bill_ids: Collection[uuid.UUID] = ()
    ) -> list[Bill]:
        """The bills the actor may see that are still owed, of these leases or with these ids."""

    @abstractmethod
    def ledger(self, actor: Actor, where: Mapping[str, object], order: Order, window: Window) -> Found[Payment]:
        """One window of the ledger entries the actor may see, as `Scoped.listed`."""

    @abstractmethod
    def rent_periods(self, lease_id: uuid.UUID) -> set[date]:
        """The first days of the periods the lease's rent bills cover."""

    @abstractmethod
    def rent_after(self, lease_id: uuid.UUID, day: date) -> list[Bill]:
        """The lease's rent bills for periods starting after `day`, locked."""

    @abstractmethod
    def open_due_before(self, day: date) -> list[uuid.UUID]:
        """Issued or part-paid bills due before `day`, earliest due first."""

    @abstractmethod
    def with_leases(self, bill_ids: Collection[uuid.UUID]) -> list[tuple[Bill, Lease]]:
        """These bills, each with its lease, by bill id; the bills locked."""


class Users(ABC):
    """The repository of accounts."""

    @abstractmethod
    def get(self, user_id: uuid.UUID, *, lock: bool = False) -> User | None:
        """The account with this id (locked for the rest of the transaction when asked), if any."""

    @abstractmethod
    def by_email(self, email: str) -> User | None:
        """The account with this (normalised) e-mail address, if any."""

    @abstractmethod
    def add(self, user: User) -> None:
        """Add an account (flushed, so a duplicate address fails here)."""

    @abstractmethod
    def listed(self, where: Mapping[str, object], order: Order, window: Window) -> Found[User]:
        """One window of the accounts whose fields equal `where`'s values (None: any), in `order`."""


class Houses(ABC):
    """The repository of houses and their photos (who may see a house is the service's rule, `access`)."""

    @abstractmethod
    def get(self, house_id: uuid.UUID, *, lock: bool = False) -> House | None:
        """The house (locked for the rest of the transaction when asked), or None."""

    @abstractmethod
    def add(self, house: House) -> None:
        """Add a house (flushed)."""

    @abstractmethod
    def listed(self, where: Mapping[str, object], order: Order, window: Window) -> Found[House]:
        """One window of the houses whose fields equal `where`'s values (None: any), in `order`."""

    @abstractmethod
    def search(self, query: HouseQuery, order: Order, window: Window) -> Found[House]:
        """One window of the listed houses matching the query's filters (city and district in any case), in `order`."""

    @abstractmethod
    def photos(self, house_id: uuid.UUID) -> list[HousePhoto]:
        """The house's photos by position, then age."""

    @abstractmethod
    def photo(self, photo_id: uuid.UUID) -> HousePhoto | None:
        """The photo with this id, if any."""

    @abstractmethod
    def add_photo(self, photo: HousePhoto) -> None:
        """Attach a photo (flushed)."""

    @abstractmethod
    def remove_photo(self, photo: HousePhoto) -> None:
        """Detach a photo."""


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
    def of_applications(self, application_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        """The lease each of these applications became, by application id (those that became one)."""

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

    @abstractmethod
    def begun_active(self, day: date) -> list[uuid.UUID]:
        """The active leases begun by `day`, by id."""

    @abstractmethod
    def locked(self, lease_ids: Collection[uuid.UUID]) -> list[Lease]:
        """These leases by id, locked for the rest of the transaction."""


class Repairs(Scoped[MaintenanceRequest]):
    """Maintenance requests and the history of each."""

    @abstractmethod
    def add_step(self, step: MaintenanceUpdate) -> None:
        """Append a step to a request's history."""

    @abstractmethod
    def history(self, request_id: uuid.UUID) -> list[MaintenanceUpdate]:
        """The request's steps, oldest first."""

    @abstractmethod
    def histories(self, actor: Actor, request_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, list[MaintenanceUpdate]]:
        """The steps, oldest first, of those of these requests the actor may see, by request id."""


class Announcements(ABC):
    """Published notices."""

    @abstractmethod
    def add(self, note: Announcement) -> None:
        """Publish a notice (flushed)."""

    @abstractmethod
    def visible_to(self, actor: Actor, order: Order, window: Window) -> Found[Announcement]:
        """One window of the notices for the actor: everyone's, plus (admins: all) those of houses the actor
        manages or, as a tenant, rents under an active lease."""


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

    @abstractmethod
    def of_tenant(self, tenant_id: uuid.UUID) -> list[tuple[Favourite, House]]:
        """The tenant's savings with their houses, newest first."""


class Reviews(ABC):
    """Tenants' reviews of houses."""

    @abstractmethod
    def by(self, house_id: uuid.UUID, tenant_id: uuid.UUID) -> Review | None:
        """The tenant's review of the house, if any."""

    @abstractmethod
    def add(self, review: Review) -> None:
        """Add a review (flushed, so a second one by the same tenant fails here)."""

    @abstractmethod
    def of_house(self, house_id: uuid.UUID, order: Order, window: Window) -> Found[Review]:
        """One window of the house's reviews, in `order`."""

    @abstractmethod
    def rating(self, house_id: uuid.UUID) -> tuple[int, float | None]:
        """How many reviews the house has and their mean rating (None without any)."""


class Reports(ABC):
    """What statistics and arrears read over a landlord's houses (`owner`), or every house when `owner` is None."""

    @abstractmethod
    def house_count(self, owner: uuid.UUID | None) -> int:
        """The houses past their draft."""

    @abstractmethod
    def lease_spans(self, owner: uuid.UUID | None, first: date, last: date) -> list[tuple[uuid.UUID, Period]]:
        """(house id, period) of the leases that hold days between `first` and `last`."""

    @abstractmethod
    def payments_since(self, owner: uuid.UUID | None, since: datetime) -> list[tuple[datetime, int]]:
        """(paid at, cents) of the payments received since `since`."""

    @abstractmethod
    def rent_billed_since(self, owner: uuid.UUID | None, first: date) -> list[tuple[date, int]]:
        """(period start, cents) of the rent bills, but cancelled ones, for periods from `first` on."""

    @abstractmethod
    def overdue(self, owner: uuid.UUID | None) -> list[tuple[Bill, str]]:
        """The overdue bills, each with its house's title."""


class Directory(ABC):
    """Who and what a screen may name for the actor (see `service.directory`)."""

    @abstractmethod
    def houses(self, actor: Actor, house_ids: Collection[uuid.UUID]) -> list[House]:
        """Those of these houses that are listed, managed by the actor, or in the actor's own dealings as a tenant
        (applications, leases, viewings, repair requests); admins: all."""

    @abstractmethod
    def people(self, actor: Actor, user_ids: Collection[uuid.UUID]) -> list[User]:
        """The actor and those of these people on the other side of the actor's dealings (a landlord's tenants, a
        tenant's landlords); admins: all."""


class Inbox(ABC):
    """Which command messages a consumer has already carried out, claimed inside the transaction of the effect."""

    @abstractmethod
    def claim(self, consumer: str, message_id: str) -> bool:
        """Claim the message for this transaction: False if it was claimed before (skip the effect then)."""


class UnitOfWork(ABC):
    """One transaction: its repositories, the events it writes to the outbox, and the business day and clock.

    Handlers use only these ports, so they run on the in-memory unit of work of the unit tests as well.
    """

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
    reports: Reports
    directory: Directory
    inbox: Inbox
    emitted: list[object]

    @abstractmethod
    def emit(self, event: BaseModel, *, key: uuid.UUID | str, subject: uuid.UUID | str | None = None) -> None:
        """Add `event` to this transaction's outbox."""


# How the service opens a transaction (the adapters provide it): the block's unit of work commits when the block
# ends normally and rolls back when it raises; a conflict with a concurrent transaction comes out as `TryAgain`,
# a broken constraint as a domain or service error.
UnitOfWorkFactory = Callable[[RentalTopics, date, LeaseTerms], AbstractContextManager[UnitOfWork]]
