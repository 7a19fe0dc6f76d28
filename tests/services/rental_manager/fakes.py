"""An in-memory unit of work for the rental handlers' unit tests: repositories over dicts, an outbox list, an
inbox set, and `FakeTransactions`, which runs a handler as `RentalService.run` does (its events reach the store's
outbox and its inbox claims hold only if the handler returns)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar

from pydantic import BaseModel
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
from rental_manager.domain.model import ApplicationStatus, BillStatus, HouseStatus, LeaseStatus, Period, Role
from rental_manager.service.paging import Found, Order, Window, given
from rental_manager.service.schemas import HouseQuery
from rental_manager.service.unit import (
    Actor,
    Announcements,
    Applications,
    Bills,
    Directory,
    Favourites,
    Houses,
    Inbox,
    Leases,
    LeaseTerms,
    RentalTopics,
    Repairs,
    Reports,
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
OPEN = (BillStatus.ISSUED, BillStatus.PARTIALLY_PAID)


def window_of(rows: Iterable[R], order: Order, window: Window) -> Found[R]:
    """`rows` (already filtered) in `order`, ties by id ascending, and the window of them, as SQL would page them."""
    by_id = sorted(rows, key=lambda row: getattr(row, "id", 0))
    ordered = sorted(by_id, key=lambda row: getattr(row, order.field), reverse=order.descending)
    return Found(ordered[window.offset : window.offset + window.size], len(ordered))


def matches(row: object, where: Mapping[str, object]) -> bool:
    """True if the row's fields equal every filter set in `where`."""
    return all(getattr(row, name) == value for name, value in given(where).items())


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

    def visible(self, actor: Actor, row: _OfAHouse) -> bool:
        """The service's rule: admins see all, tenants their own rows, landlords their houses' rows."""
        return actor.is_admin or actor.id in (row.tenant_id, self.landlords.get(row.house_id))

    def get(self, actor: Actor, ident: uuid.UUID, *, lock: bool = False) -> T | None:
        """The row if the actor may see it."""
        row = self.rows.get(ident)
        return row if row is not None and self.visible(actor, row) else None

    def add(self, row: T) -> None:
        """Keep the row."""
        self.rows[row.id] = row

    def listed(self, actor: Actor, where: Mapping[str, object], order: Order, window: Window) -> Found[T]:
        """The window of visible rows matching `where`."""
        return window_of((r for r in self.rows.values() if self.visible(actor, r) and matches(r, where)), order, window)


class FakeBills(FakeScoped[Bill], Bills):
    """Bills and payments in dicts; who sees what follows the service's rule, with each house's landlord given by
    `landlords` (`leases` is the store's, for the billing run)."""

    def __init__(self, landlords: Mapping[uuid.UUID, uuid.UUID]) -> None:
        super().__init__(landlords)
        self.bills = self.rows
        self.payments: list[Payment] = []
        self.leases: Mapping[uuid.UUID, Lease] = {}

    def payment_by_reference(self, bill_id: uuid.UUID, reference: str) -> Payment | None:
        """The payment recorded on the bill under this reference, if any."""
        return next((p for p in self.payments if p.bill_id == bill_id and p.reference == reference), None)

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
            if self.visible(actor, b)
            and b.status in OWING
            and (not lease_ids or b.lease_id in lease_ids)
            and (not bill_ids or b.id in bill_ids)
            and (lease_ids or bill_ids)
        ]

    def ledger(self, actor: Actor, where: Mapping[str, object], order: Order, window: Window) -> Found[Payment]:
        """The window of visible ledger entries matching `where`."""
        seen = (p for p in self.payments if self.visible(actor, p) and matches(p, where))
        return window_of(seen, order, window)

    def rent_periods(self, lease_id: uuid.UUID) -> set[date]:
        """First days of the lease's rent bills."""
        return {b.period_start for b in self.bills.values() if b.lease_id == lease_id and b.kind == "rent"}

    def rent_after(self, lease_id: uuid.UUID, day: date) -> list[Bill]:
        """The lease's rent bills for periods after `day`."""
        return [b for b in self.bills.values() if (b.lease_id, b.kind) == (lease_id, "rent") and b.period_start > day]

    def open_due_before(self, day: date) -> list[uuid.UUID]:
        """Open bills due before `day`, earliest first."""
        due = [b for b in self.bills.values() if b.status in OPEN and b.due_date < day]
        return [b.id for b in sorted(due, key=lambda b: (b.due_date, b.id))]

    def with_leases(self, bill_ids: Collection[uuid.UUID]) -> list[tuple[Bill, Lease]]:
        """The bills with their leases, by bill id."""
        found = sorted((self.bills[i] for i in set(bill_ids) if i in self.bills), key=lambda b: b.id)
        return [(bill, self.leases[bill.lease_id]) for bill in found]


class FakeUsers(Users):
    """Accounts in a dict."""

    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, User] = {}

    def get(self, user_id: uuid.UUID, *, lock: bool = False) -> User | None:
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

    def listed(self, where: Mapping[str, object], order: Order, window: Window) -> Found[User]:
        """The window of accounts matching `where`."""
        return window_of((u for u in self.rows.values() if matches(u, where)), order, window)


def _in_bounds(house: House, query: HouseQuery) -> bool:
    if any(getattr(house, name).strip().lower() != place for name, place in query.places().items()):
        return False
    return all(
        getattr(house, name) >= bound if least else getattr(house, name) <= bound  # type: ignore[operator]
        for name, least, bound in query.limits()
    )


class FakeHouses(Houses):
    """Houses and photos in dicts."""

    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, House] = {}
        self.pictures: dict[uuid.UUID, HousePhoto] = {}

    def get(self, house_id: uuid.UUID, *, lock: bool = False) -> House | None:
        """The house, if any."""
        return self.rows.get(house_id)

    def add(self, house: House) -> None:
        """Keep it."""
        self.rows[house.id] = house

    def listed(self, where: Mapping[str, object], order: Order, window: Window) -> Found[House]:
        """The window of houses matching `where`."""
        return window_of((h for h in self.rows.values() if matches(h, where)), order, window)

    def search(self, query: HouseQuery, order: Order, window: Window) -> Found[House]:
        """The window of listed houses within the query's places and bounds."""
        hits = (h for h in self.rows.values() if h.status is HouseStatus.LISTED and _in_bounds(h, query))
        return window_of(hits, order, window)

    def photos(self, house_id: uuid.UUID) -> list[HousePhoto]:
        """The house's photos by position, then age."""
        return sorted(
            (p for p in self.pictures.values() if p.house_id == house_id), key=lambda p: (p.position, p.created_at)
        )

    def photo(self, photo_id: uuid.UUID) -> HousePhoto | None:
        """The photo, if any."""
        return self.pictures.get(photo_id)

    def add_photo(self, photo: HousePhoto) -> None:
        """Keep it."""
        self.pictures[photo.id] = photo

    def remove_photo(self, photo: HousePhoto) -> None:
        """Drop it."""
        del self.pictures[photo.id]


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
        return self.of_applications([application_id]).get(application_id)

    def of_applications(self, application_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        """The leases these applications became."""
        return {
            lease.application_id: lease.id
            for lease in self.rows.values()
            if lease.application_id is not None and lease.application_id in application_ids
        }

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

    def begun_active(self, day: date) -> list[uuid.UUID]:
        """Active leases begun by `day`, by id."""
        return sorted(
            lease.id for lease in self.rows.values() if lease.status is LeaseStatus.ACTIVE and lease.start_date <= day
        )

    def locked(self, lease_ids: Collection[uuid.UUID]) -> list[Lease]:
        """These leases, by id."""
        return sorted((self.rows[i] for i in set(lease_ids) if i in self.rows), key=lambda lease: lease.id)


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

    def histories(self, actor: Actor, request_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, list[MaintenanceUpdate]]:
        """The steps of the visible requests among these."""
        seen = [i for i in request_ids if self.get(actor, i) is not None]
        return {i: steps for i in seen if (steps := self.history(i))}


class FakeAnnouncements(Announcements):
    """Notices in a list; who reads which follows the houses' landlords and the active leases."""

    def __init__(self, landlords: Mapping[uuid.UUID, uuid.UUID], leases: FakeLeases) -> None:
        self.landlords = landlords
        self.leases = leases
        self.rows: list[Announcement] = []

    def add(self, note: Announcement) -> None:
        """Append."""
        self.rows.append(note)

    def _mine(self, actor: Actor) -> set[uuid.UUID]:
        if actor.role is Role.LANDLORD:
            return {house for house, landlord in self.landlords.items() if landlord == actor.id}
        return {
            lease.house_id
            for lease in self.leases.rows.values()
            if lease.tenant_id == actor.id and lease.status is LeaseStatus.ACTIVE
        }

    def visible_to(self, actor: Actor, order: Order, window: Window) -> Found[Announcement]:
        """Everyone's notices and those of the actor's houses (admins: all)."""
        if actor.is_admin:
            return window_of(self.rows, order, window)
        mine = self._mine(actor)
        return window_of((n for n in self.rows if n.house_id is None or n.house_id in mine), order, window)


class FakeFavourites(Favourites):
    """Saved houses keyed (tenant, house)."""

    def __init__(self, houses: FakeHouses) -> None:
        self.houses = houses
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

    def of_tenant(self, tenant_id: uuid.UUID) -> list[tuple[Favourite, House]]:
        """The tenant's savings with their houses, newest first."""
        mine = sorted((f for f in self.rows.values() if f.tenant_id == tenant_id), key=lambda f: f.created_at)
        return [(f, self.houses.rows[f.house_id]) for f in reversed(mine)]


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

    def of_house(self, house_id: uuid.UUID, order: Order, window: Window) -> Found[Review]:
        """The window of the house's reviews."""
        return window_of((r for r in self.rows if r.house_id == house_id), order, window)

    def rating(self, house_id: uuid.UUID) -> tuple[int, float | None]:
        """Count and mean rating."""
        ratings = [r.rating for r in self.rows if r.house_id == house_id]
        return len(ratings), sum(ratings) / len(ratings) if ratings else None


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
        self.landlords = landlords
        self.bills = bills if bills is not None else FakeBills(landlords)
        self.users = FakeUsers()
        self.viewings: FakeScoped[Viewing] = FakeScoped(landlords)
        self.applications = FakeApplications(landlords)
        self.leases = FakeLeases(landlords)
        self.bills.leases = self.leases.rows
        self.repairs = FakeRepairs(landlords)
        self.announcements = FakeAnnouncements(landlords, self.leases)
        self.favourites = FakeFavourites(self.houses)
        self.reviews = FakeReviews()
        self.reports = FakeReports(self)
        self.directory = FakeDirectory(self)
        self.claimed: set[tuple[str, str]] = set()
        self.outbox: list[tuple[BaseModel, str]] = []

    def houses_of(self, owner: uuid.UUID | None) -> set[uuid.UUID]:
        """The ids of a landlord's houses (every house when None)."""
        return {h.id for h in self.houses.rows.values() if owner is None or h.landlord_id == owner}


class FakeReports(Reports):
    """Statistics and arrears over the store."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def house_count(self, owner: uuid.UUID | None) -> int:
        """Houses past their draft."""
        rows = self.store.houses.rows
        return sum(1 for h in self.store.houses_of(owner) if rows[h].status is not HouseStatus.DRAFT)

    def lease_spans(self, owner: uuid.UUID | None, first: date, last: date) -> list[tuple[uuid.UUID, Period]]:
        """(house, period) of the leases holding days in the span."""
        mine = self.store.houses_of(owner)
        return [
            (lease.house_id, Period(lease.start_date, lease.end_date))
            for lease in self.store.leases.rows.values()
            if lease.house_id in mine and lease.start_date <= min(lease.end_date, last) and lease.end_date >= first
        ]

    def payments_since(self, owner: uuid.UUID | None, since: datetime) -> list[tuple[datetime, int]]:
        """(paid at, cents) since `since`."""
        mine = self.store.houses_of(owner)
        return [
            (p.paid_at, p.amount_cents) for p in self.store.bills.payments if p.house_id in mine and p.paid_at >= since
        ]

    def rent_billed_since(self, owner: uuid.UUID | None, first: date) -> list[tuple[date, int]]:
        """(period start, cents) of rent bills not cancelled from `first` on."""
        mine = self.store.houses_of(owner)
        return [
            (b.period_start, b.amount_cents)
            for b in self.store.bills.bills.values()
            if b.house_id in mine
            and b.kind == "rent"
            and b.status is not BillStatus.CANCELLED
            and b.period_start >= first
        ]

    def overdue(self, owner: uuid.UUID | None) -> list[tuple[Bill, str]]:
        """Overdue bills with their house's title."""
        mine, rows = self.store.houses_of(owner), self.store.houses.rows
        return [
            (b, rows[b.house_id].title)
            for b in self.store.bills.bills.values()
            if b.house_id in mine and b.status is BillStatus.OVERDUE
        ]


class FakeDirectory(Directory):
    """House titles and people's names over the store, by the service's rule."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def _dealings(self) -> list[_OfAHouse]:
        s = self.store
        return [
            *s.applications.rows.values(),
            *s.leases.rows.values(),
            *s.viewings.rows.values(),
            *s.repairs.rows.values(),
        ]

    def houses(self, actor: Actor, house_ids: Collection[uuid.UUID]) -> list[House]:
        """The houses among these the actor may name."""
        tenant_of = {row.house_id for row in self._dealings() if row.tenant_id == actor.id}
        return [
            h
            for h in self.store.houses.rows.values()
            if h.id in house_ids
            and (actor.is_admin or h.status is HouseStatus.LISTED or h.landlord_id == actor.id or h.id in tenant_of)
        ]

    def people(self, actor: Actor, user_ids: Collection[uuid.UUID]) -> list[User]:
        """The actor and the other sides of the actor's dealings among these."""
        landlords = self.store.landlords
        if actor.role is Role.LANDLORD:
            others = {row.tenant_id for row in self._dealings() if landlords.get(row.house_id) == actor.id}
        else:
            others = {landlords[row.house_id] for row in self._dealings() if row.tenant_id == actor.id}
            others |= {lease.landlord_id for lease in self.store.leases.rows.values() if lease.tenant_id == actor.id}
        return [
            u
            for u in self.store.users.rows.values()
            if u.id in user_ids and (actor.is_admin or u.id == actor.id or u.id in others)
        ]


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
        self.reports = store.reports
        self.directory = store.directory
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


def a_house(landlord_id: uuid.UUID, **fields: Any) -> House:
    """A listed house of the landlord's; `fields` override the defaults."""
    values: dict[str, Any] = {
        "title": "Loft",
        "address": "8 Quai Saint-Vincent",
        "city": "Lyon",
        "district": "Croix-Rousse",
        "area_m2": 68.0,
        "rooms": 3,
        "facilities": ["wifi"],
        "monthly_rent_cents": 95_000,
        "deposit_cents": 100_000,
        "status": HouseStatus.LISTED,
        "listed_available_from": TODAY,
        "available_from": TODAY,
    }
    return House(landlord_id=landlord_id, **(values | fields))


def a_lease(house: House, tenant_id: uuid.UUID, start: date, end: date, **fields: Any) -> Lease:
    """An active lease of the house on the default terms; `fields` override them."""
    values: dict[str, Any] = {
        "original_end_date": end,
        "monthly_rent_cents": house.monthly_rent_cents,
        "deposit_cents": house.deposit_cents,
        "due_day": LeaseTerms.due_day,
        "grace_days": LeaseTerms.grace_days,
        "late_fee_flat_cents": LeaseTerms.late_fee_flat_cents,
        "late_fee_percent_bps": LeaseTerms.late_fee_percent_bps,
        "status": LeaseStatus.ACTIVE,
    }
    return Lease(
        house_id=house.id,
        tenant_id=tenant_id,
        landlord_id=house.landlord_id,
        start_date=start,
        end_date=end,
        **(values | fields),
    )


class LetHouse:
    """A landlord's listed house, a tenant living in it under an active lease, and a deposit bill owed; the two of
    them as actors, and the service's `run` (`svc`) on the fake store."""

    def __init__(self) -> None:
        self.store = FakeStore()
        self.landlord = self._user(Role.LANDLORD)
        self.tenant = self._user(Role.TENANT)
        self.house = a_house(self.landlord.id)
        self.store.houses.rows[self.house.id] = self.house
        self.lease = a_lease(self.house, self.tenant.id, TODAY - timedelta(days=30), TODAY + timedelta(days=30))
        self.store.leases.add(self.lease)
        self.bill = Bill(
            lease_id=self.lease.id,
            house_id=self.house.id,
            tenant_id=self.tenant.id,
            kind="deposit",
            period_start=self.lease.start_date,
            period_end=self.lease.start_date,
            due_date=self.lease.start_date,
            amount_cents=100_000,
        )
        self.store.bills.bills[self.bill.id] = self.bill
        self.svc = FakeTransactions(self.store)
        self.as_tenant = Actor(self.tenant.id, Role.TENANT)
        self.as_landlord = Actor(self.landlord.id, Role.LANDLORD)

    def events(self) -> list[tuple[str, str]]:
        """The outbox as (event type, key), in the order written."""
        return [(type(event).__name__, key) for event, key in self.store.outbox]

    def _user(self, role: Role) -> User:
        user = User(role=role, email=f"{uuid.uuid4().hex}@example.com", full_name=role.value, password_hash="-")
        self.store.users.rows[user.id] = user
        return user
