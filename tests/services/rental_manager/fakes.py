"""An in-memory unit of work for the rental handlers' unit tests: repositories over dicts, an outbox list, an
inbox set, and `FakeTransactions`, which runs a handler as `RentalService.run` does (its events reach the store's
outbox and its inbox claims hold only if the handler returns)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar

from pydantic import BaseModel
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
from rental_manager.domain.model import ApplicationStatus, BillStatus, HouseStatus, LeaseStatus, Period, Role
from rental_manager.service.unit import (
    Actor,
    Announcements,
    Applications,
    Bills,
    Favourites,
    Houses,
    Inbox,
    Leases,
    LeaseTerms,
    RentalTopics,
    Repairs,
    Reviews,
    Scoped,
    UnitOfWork,
    Users,
)

TODAY = date(2026, 3, 1)
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)

P = ParamSpec("P")
R = TypeVar("R")

OWING = (BillStatus.ISSUED, BillStatus.PARTIALLY_PAID, BillStatus.OVERDUE)


class FakeBills(Bills):
    """Bills and payments in dicts; who sees what follows the service's rule (tenants theirs, landlords their
    houses', admins all), with each house's landlord given by `landlords`."""

    def __init__(self, landlords: Mapping[uuid.UUID, uuid.UUID]) -> None:
        self.landlords = landlords
        self.bills: dict[uuid.UUID, Bill] = {}
        self.payments: list[Payment] = []

    def _visible(self, actor: Actor, bill: Bill) -> bool:
        if actor.is_admin:
            return True
        return actor.id in (bill.tenant_id, self.landlords.get(bill.house_id))

    def get(self, actor: Actor, bill_id: uuid.UUID, *, lock: bool = False) -> Bill | None:
        """The bill if the actor may see it."""
        bill = self.bills.get(bill_id)
        return bill if bill is not None and self._visible(actor, bill) else None

    def payment_by_reference(self, bill_id: uuid.UUID, reference: str) -> Payment | None:
        """The payment recorded on the bill under this reference, if any."""
        return next((p for p in self.payments if p.bill_id == bill_id and p.reference == reference), None)

    def add(self, bill: Bill) -> None:
        """Keep the bill."""
        self.bills[bill.id] = bill

    def add_payment(self, payment: Payment) -> None:
        """Append to the ledger."""
        self.payments.append(payment)

    def owing(
        self, actor: Actor, *, lease_ids: Collection[uuid.UUID] = (), bill_ids: Collection[uuid.UUID] = ()
    ) -> list[Bill]:
        """The visible bills still owed, of these leases or with these ids."""
        return [
            b
            for b in self.bills.values()
            if self._visible(actor, b)
            and b.status in OWING
            and (not lease_ids or b.lease_id in lease_ids)
            and (not bill_ids or b.id in bill_ids)
            and (lease_ids or bill_ids)
        ]


class FakeUsers(Users):
    """Accounts in a dict."""

    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, User] = {}

    def get(self, user_id: uuid.UUID) -> User | None:
        """The account, if any."""
        return self.rows.get(user_id)

    def by_email(self, email: str) -> User | None:
        """The account with this address, if any."""
        return next((u for u in self.rows.values() if u.email == email), None)

    def add(self, user: User) -> None:
        """Keep it, unless the address is taken (as the unique index would refuse)."""
        if self.by_email(user.email) is not None:
            raise AssertionError("users.email is unique: the handler should have refused this")
        self.rows[user.id] = user


class FakeHouses(Houses):
    """Houses in a dict."""

    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, House] = {}

    def get(self, house_id: uuid.UUID, *, lock: bool = False) -> House | None:
        """The house, if any."""
        return self.rows.get(house_id)


class Landlords(Mapping[uuid.UUID, uuid.UUID]):
    """Each house's landlord, read live from the fake houses (what the other fakes' visibility needs)."""

    def __init__(self, houses: FakeHouses) -> None:
        self.houses = houses

    def __getitem__(self, house_id: uuid.UUID) -> uuid.UUID:
        return self.houses.rows[house_id].landlord_id

    def __iter__(self) -> Iterator[uuid.UUID]:
        return iter(self.houses.rows)

    def __len__(self) -> int:
        return len(self.houses.rows)


class _OfAHouse(Protocol):
    id: Any
    house_id: Any
    tenant_id: Any


T = TypeVar("T", bound=_OfAHouse)


class FakeScoped(Scoped[T], Generic[T]):
    """Rows in a dict, seen by their tenant, their house's landlord (from `landlords`) and admins."""

    def __init__(self, landlords: Mapping[uuid.UUID, uuid.UUID]) -> None:
        self.landlords = landlords
        self.rows: dict[uuid.UUID, T] = {}

    def get(self, actor: Actor, ident: uuid.UUID, *, lock: bool = False) -> T | None:
        """The row if the actor may see it."""
        row = self.rows.get(ident)
        if row is None or not (actor.is_admin or actor.id in (row.tenant_id, self.landlords.get(row.house_id))):
            return None
        return row

    def add(self, row: T) -> None:
        """Keep the row."""
        self.rows[row.id] = row


class FakeApplications(FakeScoped[Application], Applications):
    """Applications in a dict."""

    def pending_on(self, house_id: uuid.UUID, exclude: uuid.UUID | None = None) -> list[Application]:
        """The house's pending applications but `exclude`."""
        return [
            a
            for a in self.rows.values()
            if a.house_id == house_id and a.status is ApplicationStatus.PENDING and a.id != exclude
        ]


class FakeLeases(FakeScoped[Lease], Leases):
    """Leases in a dict."""

    def of_application(self, application_id: uuid.UUID) -> uuid.UUID | None:
        """The lease the application became, if any."""
        return next((lease.id for lease in self.rows.values() if lease.application_id == application_id), None)

    def periods(self, house_id: uuid.UUID, exclude: uuid.UUID | None = None) -> list[Period]:
        """The house's leases' periods that hold days."""
        return [
            Period(lease.start_date, lease.end_date)
            for lease in self.rows.values()
            if lease.house_id == house_id and lease.end_date >= lease.start_date and lease.id != exclude
        ]

    def current(self, house_id: uuid.UUID, tenant_id: uuid.UUID, today: date) -> Lease | None:
        """The tenant's latest active lease of the house begun by `today`."""
        begun = [
            lease
            for lease in self.rows.values()
            if (lease.house_id, lease.tenant_id, lease.status) == (house_id, tenant_id, LeaseStatus.ACTIVE)
            and lease.start_date <= today
        ]
        return max(begun, key=lambda lease: lease.start_date, default=None)

    def active_ends(self, house_id: uuid.UUID) -> list[date]:
        """The last days of the house's active leases that hold days."""
        return [
            lease.end_date
            for lease in self.rows.values()
            if (lease.house_id, lease.status) == (house_id, LeaseStatus.ACTIVE) and lease.end_date >= lease.start_date
        ]

    def of_tenant(self, house_id: uuid.UUID, tenant_id: uuid.UUID) -> list[Lease]:
        """The tenant's leases of the house that hold days."""
        return [
            lease
            for lease in self.rows.values()
            if (lease.house_id, lease.tenant_id) == (house_id, tenant_id) and lease.end_date >= lease.start_date
        ]


class FakeRepairs(FakeScoped[MaintenanceRequest], Repairs):
    """Maintenance requests and their steps in memory."""

    def __init__(self, landlords: Mapping[uuid.UUID, uuid.UUID]) -> None:
        super().__init__(landlords)
        self.steps: list[MaintenanceUpdate] = []

    def add_step(self, step: MaintenanceUpdate) -> None:
        """Append a step."""
        self.steps.append(step)

    def history(self, request_id: uuid.UUID) -> list[MaintenanceUpdate]:
        """The request's steps in the order added."""
        return [step for step in self.steps if step.request_id == request_id]


class FakeAnnouncements(Announcements):
    """Notices in a list."""

    def __init__(self) -> None:
        self.rows: list[Announcement] = []

    def add(self, note: Announcement) -> None:
        """Append."""
        self.rows.append(note)


class FakeFavourites(Favourites):
    """Saved houses keyed (tenant, house)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[uuid.UUID, uuid.UUID], Favourite] = {}

    def get(self, tenant_id: uuid.UUID, house_id: uuid.UUID) -> Favourite | None:
        """The saving, if any."""
        return self.rows.get((tenant_id, house_id))

    def add(self, favourite: Favourite) -> None:
        """Keep it."""
        self.rows[(favourite.tenant_id, favourite.house_id)] = favourite

    def remove(self, favourite: Favourite) -> None:
        """Drop it."""
        del self.rows[(favourite.tenant_id, favourite.house_id)]


class FakeReviews(Reviews):
    """Reviews in a list; a second by the same tenant of the same house is refused as the unique key would."""

    def __init__(self) -> None:
        self.rows: list[Review] = []

    def by(self, house_id: uuid.UUID, tenant_id: uuid.UUID) -> Review | None:
        """The tenant's review of the house, if any."""
        return next((r for r in self.rows if (r.house_id, r.tenant_id) == (house_id, tenant_id)), None)

    def add(self, review: Review) -> None:
        """Append, unless the tenant reviewed the house already."""
        if self.by(review.house_id, review.tenant_id) is not None:
            raise AssertionError("uq_reviews_tenant_house: the handler should have refused this")
        self.rows.append(review)


class FakeInbox(Inbox):
    """Claims of one transaction over the claims committed before it."""

    def __init__(self, committed: set[tuple[str, str]]) -> None:
        self.committed = committed
        self.pending: set[tuple[str, str]] = set()

    def claim(self, consumer: str, message_id: str) -> bool:
        """True unless this or a committed transaction claimed the message."""
        key = (consumer, message_id)
        if key in self.committed or key in self.pending:
            return False
        self.pending.add(key)
        return True


class FakeStore:
    """Everything the fakes hold, shared by the units of work opened on it: rows, the outbox, the inbox."""

    def __init__(self, bills: FakeBills | None = None) -> None:
        self.houses = FakeHouses()
        landlords = Landlords(self.houses)
        self.bills = bills if bills is not None else FakeBills(landlords)
        self.users = FakeUsers()
        self.viewings: FakeScoped[Viewing] = FakeScoped(landlords)
        self.applications = FakeApplications(landlords)
        self.leases = FakeLeases(landlords)
        self.repairs = FakeRepairs(landlords)
        self.announcements = FakeAnnouncements()
        self.favourites = FakeFavourites()
        self.reviews = FakeReviews()
        self.claimed: set[tuple[str, str]] = set()
        self.outbox: list[tuple[BaseModel, str]] = []


class FakeUnitOfWork(UnitOfWork):
    """One 'transaction' in memory: `events` holds what was emitted, with its key."""

    def __init__(self, store: FakeStore, today: date = TODAY) -> None:
        self.topics = RentalTopics()
        self.today = today
        self.terms = LeaseTerms()
        self.now = datetime(today.year, today.month, today.day, 12, tzinfo=UTC)
        self.bills = store.bills
        self.users = store.users
        self.houses = store.houses
        self.viewings = store.viewings
        self.applications = store.applications
        self.leases = store.leases
        self.repairs = store.repairs
        self.announcements = store.announcements
        self.favourites = store.favourites
        self.reviews = store.reviews
        self.inbox = FakeInbox(store.claimed)
        self.emitted: list[object] = []
        self.events: list[tuple[BaseModel, str]] = []

    def emit(self, event: BaseModel, *, key: uuid.UUID | str, subject: uuid.UUID | str | None = None) -> None:
        """Keep the event and its key."""
        self.emitted.append(event)
        self.events.append((event, str(key)))


class FakeTransactions:
    """`RentalService.run` on the fake store: a handler that raises leaves no event and no claim behind.

    (Rows a handler changed before raising stay changed: the handlers check before they write.)"""

    def __init__(self, store: FakeStore, today: date = TODAY) -> None:
        self.store = store
        self.today = today

    def run(self, fn: Callable[Concatenate[UnitOfWork, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run `fn(uow, *args)`; on return its events join the outbox and its claims the committed ones."""
        uow = FakeUnitOfWork(self.store, self.today)
        result = fn(uow, *args, **kwargs)
        self.store.outbox.extend(uow.events)
        self.store.claimed |= uow.inbox.pending
        return result


class LetHouse:
    """A landlord's listed house, a tenant living in it under an active lease, and a deposit bill owed; the two of
    them as actors, and the service's `run` (`svc`) on the fake store."""

    def __init__(self) -> None:
        self.store = FakeStore()
        self.landlord = self._user(Role.LANDLORD)
        self.tenant = self._user(Role.TENANT)
        self.house = House(
            id=uuid.uuid4(),
            landlord_id=self.landlord.id,
            title="Loft",
            address="8 Quai Saint-Vincent",
            city="Lyon",
            district="Croix-Rousse",
            area_m2=68.0,
            rooms=3,
            facilities=["wifi"],
            monthly_rent_cents=95_000,
            deposit_cents=100_000,
            status=HouseStatus.LISTED,
            listed_available_from=TODAY,
            available_from=TODAY,
        )
        self.store.houses.rows[self.house.id] = self.house
        self.lease = Lease(
            id=uuid.uuid4(),
            house_id=self.house.id,
            tenant_id=self.tenant.id,
            landlord_id=self.landlord.id,
            start_date=TODAY - timedelta(days=30),
            end_date=TODAY + timedelta(days=30),
            status=LeaseStatus.ACTIVE,
        )
        self.store.leases.add(self.lease)
        self.bill = Bill(
            id=uuid.uuid4(),
            lease_id=self.lease.id,
            house_id=self.house.id,
            tenant_id=self.tenant.id,
            kind="deposit",
            amount_cents=100_000,
            late_fee_cents=0,
            paid_cents=0,
            status=BillStatus.ISSUED,
        )
        self.store.bills.bills[self.bill.id] = self.bill
        self.svc = FakeTransactions(self.store)
        self.as_tenant = Actor(self.tenant.id, Role.TENANT)
        self.as_landlord = Actor(self.landlord.id, Role.LANDLORD)

    def events(self) -> list[tuple[str, str]]:
        """The outbox as (event type, key), in the order written."""
        return [(type(event).__name__, key) for event, key in self.store.outbox]

    def _user(self, role: Role) -> User:
        user = User(id=uuid.uuid4(), role=role, active=True, email=f"{uuid.uuid4().hex}@example.com")
        self.store.users.rows[user.id] = user
        return user
