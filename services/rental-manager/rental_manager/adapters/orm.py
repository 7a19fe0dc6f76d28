"""The relational model (SQLAlchemy 2): every id a UUID, every amount integer cents, every time UTC.

UUID keys survive a dump and restore unchanged and need no sequence, so the classic PostgreSQL trap of a
restored table whose sequence lags behind its rows (or a second owned sequence) cannot happen here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, ClassVar

from quartet_shared.db import JSON_DOCUMENT
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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

VERSION_TABLE = "rental_manager_alembic_version"

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite hands back naive values otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; give a timezone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _state(enum: type[StrEnum], name: str) -> Enum:
    # VARCHAR plus a CHECK constraint: adding a state later is a constraint change, not a type migration.
    return Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=20,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    """Declarative base with constraint names Alembic can refer to."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime,
        uuid.UUID: Uuid,
        dict[str, Any]: JSON_DOCUMENT,
    }


def _id() -> Mapped[uuid.UUID]:
    return mapped_column(Uuid, primary_key=True, default=uuid.uuid4)


class User(Base):
    """An admin, landlord or tenant."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = _id()
    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(_state(Role, "user_role"))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Stamped into every token issued; signing out bumps it, so every earlier token stops working at once.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class House(Base):
    """A house to let, owned by a landlord."""

    __tablename__ = "houses"
    __table_args__ = (
        CheckConstraint("monthly_rent_cents >= 0", name="rent_not_negative"),
        CheckConstraint("deposit_cents >= 0", name="deposit_not_negative"),
        CheckConstraint("rooms >= 0", name="rooms_not_negative"),
        CheckConstraint("area_m2 > 0", name="area_positive"),
        Index(
            "ix_houses_search", "status", func.lower(text("city")), func.lower(text("district")), "monthly_rent_cents"
        ),
        Index("ix_houses_landlord", "landlord_id", "status"),
        Index("ix_houses_available", "status", "available_from"),
    )

    id: Mapped[uuid.UUID] = _id()
    landlord_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str] = mapped_column(String(300))
    city: Mapped[str] = mapped_column(String(100))
    district: Mapped[str] = mapped_column(String(100))
    area_m2: Mapped[float] = mapped_column(Float)
    rooms: Mapped[int] = mapped_column(Integer)
    monthly_rent_cents: Mapped[int] = mapped_column(BigInteger)
    deposit_cents: Mapped[int] = mapped_column(BigInteger)
    facilities: Mapped[list[str]] = mapped_column(JSON_DOCUMENT, default=list)
    status: Mapped[HouseStatus] = mapped_column(_state(HouseStatus, "house_status"), default=HouseStatus.DRAFT)
    listed_available_from: Mapped[date] = mapped_column(Date)
    available_from: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class HousePhoto(Base):
    """A photo's metadata (the bytes live wherever `url` points)."""

    __tablename__ = "house_photos"

    id: Mapped[uuid.UUID] = _id()
    house_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("houses.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    caption: Mapped[str] = mapped_column(String(300), default="")
    content_type: Mapped[str] = mapped_column(String(100))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Viewing(Base):
    """A viewing appointment a tenant asked for."""

    __tablename__ = "viewings"

    id: Mapped[uuid.UUID] = _id()
    house_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("houses.id"), index=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    scheduled_at: Mapped[datetime]
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[ViewingStatus] = mapped_column(
        _state(ViewingStatus, "viewing_status"), default=ViewingStatus.REQUESTED
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Application(Base):
    """A tenant's application to rent a house for a period."""

    __tablename__ = "applications"
    __table_args__ = (
        CheckConstraint("end_date >= start_date", name="dates_ordered"),
        Index("ix_applications_house_status", "house_id", "status"),
    )

    id: Mapped[uuid.UUID] = _id()
    house_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("houses.id"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    message: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[ApplicationStatus] = mapped_column(
        _state(ApplicationStatus, "application_status"), default=ApplicationStatus.PENDING
    )
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Lease(Base):
    """A lease: a tenant in a house from `start_date` to `end_date`, both included.

    On PostgreSQL an exclusion constraint keeps leases of one house from overlapping; the range is
    `[start_date, end_date + 1)`, so a lease terminated before its first day (end = start - 1) is empty
    and blocks nothing.
    """

    __tablename__ = "leases"
    __table_args__ = (
        CheckConstraint("end_date >= start_date - 1", name="dates_ordered"),
        CheckConstraint("monthly_rent_cents >= 0", name="rent_not_negative"),
        CheckConstraint("deposit_cents >= 0", name="deposit_not_negative"),
        CheckConstraint("due_day BETWEEN 1 AND 28", name="due_day_in_month"),
        ExcludeConstraint(
            (text("house_id"), "="),
            (text("daterange(start_date, end_date + 1)"), "&&"),
            name="leases_no_overlap",
            using="gist",
        ).ddl_if(dialect="postgresql"),
        Index("ix_leases_house", "house_id", "start_date"),
    )

    id: Mapped[uuid.UUID] = _id()
    house_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("houses.id"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    landlord_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    application_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("applications.id"), unique=True)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    original_end_date: Mapped[date] = mapped_column(Date)
    monthly_rent_cents: Mapped[int] = mapped_column(BigInteger)
    deposit_cents: Mapped[int] = mapped_column(BigInteger)
    due_day: Mapped[int] = mapped_column(Integer)
    grace_days: Mapped[int] = mapped_column(Integer)
    late_fee_flat_cents: Mapped[int] = mapped_column(BigInteger)
    late_fee_percent_bps: Mapped[int] = mapped_column(Integer)
    late_fee_cap_cents: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[LeaseStatus] = mapped_column(_state(LeaseStatus, "lease_status"), default=LeaseStatus.ACTIVE)
    renewals: Mapped[int] = mapped_column(Integer, default=0)
    termination_reason: Mapped[str | None] = mapped_column(Text)
    terminated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Bill(Base):
    """One bill of a lease: a month's rent or the deposit."""

    __tablename__ = "bills"
    __table_args__ = (
        UniqueConstraint("lease_id", "kind", "period_start", name="uq_bills_lease_period"),
        CheckConstraint("amount_cents >= 0", name="amount_not_negative"),
        CheckConstraint("late_fee_cents >= 0", name="fee_not_negative"),
        CheckConstraint("paid_cents >= 0 AND paid_cents <= amount_cents + late_fee_cents", name="paid_in_range"),
        CheckConstraint("kind IN ('rent', 'deposit')", name="kind_known"),
        Index("ix_bills_status_due", "status", "due_date"),
        Index("ix_bills_house", "house_id", "status"),
    )

    id: Mapped[uuid.UUID] = _id()
    lease_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leases.id"), index=True)
    house_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("houses.id"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    late_fee_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[BillStatus] = mapped_column(_state(BillStatus, "bill_status"), default=BillStatus.ISSUED)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    overdue_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]

    @property
    def state(self) -> BillState:
        """The bill as the domain sees it."""
        return BillState(self.status, self.amount_cents, self.late_fee_cents, self.paid_cents)

    @property
    def total_cents(self) -> int:
        """Amount plus late fee."""
        return self.state.total_cents

    @property
    def outstanding_cents(self) -> int:
        """What is still owed."""
        return self.state.outstanding_cents


class Payment(Base):
    """One entry of the payments ledger (append-only; a bill may have many)."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("bill_id", "reference", name="uq_payments_bill_reference"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        Index("ix_payments_house_paid", "house_id", "paid_at"),
    )

    id: Mapped[uuid.UUID] = _id()
    bill_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bills.id"), index=True)
    lease_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leases.id"))
    house_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("houses.id"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[str] = mapped_column(String(30))
    reference: Mapped[str | None] = mapped_column(String(100))
    recorded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    paid_at: Mapped[datetime] = mapped_column(default=utcnow)


class MaintenanceRequest(Base):
    """A repair a tenant asked for, moving along its status flow."""

    __tablename__ = "maintenance_requests"
    __table_args__ = (Index("ix_maintenance_house_status", "house_id", "status"),)

    id: Mapped[uuid.UUID] = _id()
    house_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("houses.id"))
    lease_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leases.id"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[str] = mapped_column(String(10))
    status: Mapped[MaintenanceStatus] = mapped_column(
        _state(MaintenanceStatus, "maintenance_status"), default=MaintenanceStatus.OPEN
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    resolved_at: Mapped[datetime | None]


class MaintenanceUpdate(Base):
    """One step of a maintenance request's history."""

    __tablename__ = "maintenance_updates"

    id: Mapped[uuid.UUID] = _id()
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("maintenance_requests.id"), index=True)
    actor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Announcement(Base):
    """A notice from an admin (to everyone) or a landlord (to one house's tenants)."""

    __tablename__ = "announcements"

    id: Mapped[uuid.UUID] = _id()
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    house_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("houses.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Favourite(Base):
    """A tenant's saved house."""

    __tablename__ = "favourites"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    house_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("houses.id"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Review(Base):
    """A tenant's review of a house they rent or rented (one per tenant and house)."""

    __tablename__ = "reviews"
    __table_args__ = (
        UniqueConstraint("tenant_id", "house_id", name="uq_reviews_tenant_house"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
    )

    id: Mapped[uuid.UUID] = _id()
    house_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("houses.id"), index=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    lease_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leases.id"))
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    """An event written in the same transaction as the change it describes; its id is the event's `ce_id`."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index(
            "ix_outbox_unsent",
            "created_at",
            postgresql_where=text("sent_at IS NULL"),
            sqlite_where=text("sent_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = _id()
    topic: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(200))
    ce_type: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON_DOCUMENT)
    traceparent: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
