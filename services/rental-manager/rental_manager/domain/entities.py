"""The rental entities: plain classes the handlers create and change; `adapters.orm` maps them onto tables.

Every id is a UUID, every amount integer cents, every time UTC. Equality is identity (`eq=False`), as for rows
loaded from a session: two objects are the same entity only if they are the same object.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from rental_manager.domain.billing import BillState
from rental_manager.domain.model import (
    ApplicationStatus,
    BillStatus,
    HouseStatus,
    LeaseStatus,
    MaintenanceStatus,
    Role,
    ViewingStatus,
)


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


@dataclass(eq=False, kw_only=True)
class User:
    """An admin, landlord or tenant."""

    id: uuid.UUID = field(default_factory=uuid.uuid4)
    email: str
    full_name: str
    role: Role
    password_hash: str
    active: bool = True
    created_at: datetime = field(default_factory=utcnow)
    # Stamped into every token issued; signing out bumps it, so every earlier token stops working at once.
    token_version: int = 0


@dataclass(eq=False, kw_only=True)
class House:
    """A house to let, owned by a landlord."""

    id: uuid.UUID = field(default_factory=uuid.uuid4)
    landlord_id: uuid.UUID
    title: str
    description: str = ""
    address: str
    city: str
    district: str
    area_m2: float
    rooms: int
    monthly_rent_cents: int
    deposit_cents: int
    facilities: list[str] = field(default_factory=list)
    status: HouseStatus = HouseStatus.DRAFT
    listed_available_from: date
    available_from: date
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(eq=False, kw_only=True)
class HousePhoto:
    """A photo's metadata (the bytes live wherever `url` points)."""

    id: uuid.UUID = field(default_factory=uuid.uuid4)
    house_id: uuid.UUID
    url: str
    caption: str = ""
    content_type: str
    width: int
    height: int
    size_bytes: int
    position: int = 0
    created_at: datetime = field(default_factory=utcnow)


@dataclass(eq=False, kw_only=True)
class Viewing:
    """A viewing appointment a tenant asked for."""

    id: uuid.UUID = field(default_factory=uuid.uuid4)
    house_id: uuid.UUID
    tenant_id: uuid.UUID
    scheduled_at: datetime
    note: str = ""
    status: ViewingStatus = ViewingStatus.REQUESTED
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(eq=False, kw_only=True)
class Application:
    """A tenant's application to rent a house for a period."""

    id: uuid.UUID = field(default_factory=uuid.uuid4)
    house_id: uuid.UUID
    tenant_id: uuid.UUID
    start_date: date
    end_date: date
    message: str = ""
    status: ApplicationStatus = ApplicationStatus.PENDING
    decision_reason: str | None = None
    decided_at: datetime | None = None
    decided_by: uuid.UUID | None = None
    created_at: datetime = field(default_factory=utcnow)


@dataclass(eq=False, kw_only=True)
class Lease:
    """A lease: a tenant in a house from `start_date` to `end_date`, both included (a lease terminated before its
    first day ends the day before it and holds no day)."""

    id: uuid.UUID = field(default_factory=uuid.uuid4)
    house_id: uuid.UUID
    tenant_id: uuid.UUID
    landlord_id: uuid.UUID
    application_id: uuid.UUID | None = None
    start_date: date
    end_date: date
    original_end_date: date
    monthly_rent_cents: int
    deposit_cents: int
    due_day: int
    grace_days: int
    late_fee_flat_cents: int
    late_fee_percent_bps: int
    late_fee_cap_cents: int | None = None
    status: LeaseStatus = LeaseStatus.ACTIVE
    renewals: int = 0
    termination_reason: str | None = None
    terminated_at: datetime | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(eq=False, kw_only=True)
class Bill:
    """One bill of a lease: a month's rent or the deposit."""

    id: uuid.UUID = field(default_factory=uuid.uuid4)
    lease_id: uuid.UUID
    house_id: uuid.UUID
    tenant_id: uuid.UUID
    kind: str
    period_start: date
    period_end: date
    due_date: date
    amount_cents: int
    late_fee_cents: int = 0
    paid_cents: int = 0
    status: BillStatus = BillStatus.ISSUED
    issued_at: datetime = field(default_factory=utcnow)
    overdue_at: datetime | None = None
    paid_at: datetime | None = None
    cancelled_at: datetime | None = None

    @property
    def state(self) -> BillState:
        """The bill as the billing rules see it."""
        return BillState(self.status, self.amount_cents, self.late_fee_cents, self.paid_cents)

    @property
    def total_cents(self) -> int:
        """Amount plus late fee."""
        return self.state.total_cents

    @property
    def outstanding_cents(self) -> int:
        """What is still owed."""
        return self.state.outstanding_cents


@dataclass(eq=False, kw_only=True)
class Payment:
    """One entry of the payments ledger (append-only; a bill may have many)."""

    id: uuid.UUID = field(default_factory=uuid.uuid4)
    bill_id: uuid.UUID
    lease_id: uuid.UUID
    house_id: uuid.UUID
    tenant_id: uuid.UUID
    amount_cents: int
    method: str
    reference: str | None = None
    recorded_by: uuid.UUID
    paid_at: datetime = field(default_factory=utcnow)


@dataclass(eq=False, kw_only=True)
class MaintenanceRequest:
    """A repair a tenant asked for, moving along its status flow."""

    id: uuid.UUID = field(default_factory=uuid.uuid4)
    house_id: uuid.UUID
    lease_id: uuid.UUID
    tenant_id: uuid.UUID
    title: str
    description: str = ""
    priority: str
    status: MaintenanceStatus = MaintenanceStatus.OPEN
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    resolved_at: datetime | None = None


@dataclass(eq=False, kw_only=True)
class MaintenanceUpdate:
    """One step of a maintenance request's history."""

    id: uuid.UUID = field(default_factory=uuid.uuid4)
    request_id: uuid.UUID
    actor_id: uuid.UUID
    from_status: str | None = None
    to_status: str
    note: str = ""
    created_at: datetime = field(default_factory=utcnow)


@dataclass(eq=False, kw_only=True)
class Announcement:
    """A notice from an admin (to everyone) or a landlord (to one house's tenants)."""

    id: uuid.UUID = field(default_factory=uuid.uuid4)
    author_id: uuid.UUID
    house_id: uuid.UUID | None = None
    title: str
    body: str
    published_at: datetime = field(default_factory=utcnow)


@dataclass(eq=False, kw_only=True)
class Favourite:
    """A tenant's saved house."""

    tenant_id: uuid.UUID
    house_id: uuid.UUID
    created_at: datetime = field(default_factory=utcnow)


@dataclass(eq=False, kw_only=True)
class Review:
    """A tenant's review of a house they rent or rented (one per tenant and house)."""

    id: uuid.UUID = field(default_factory=uuid.uuid4)
    house_id: uuid.UUID
    tenant_id: uuid.UUID
    lease_id: uuid.UUID
    rating: int
    comment: str = ""
    created_at: datetime = field(default_factory=utcnow)
