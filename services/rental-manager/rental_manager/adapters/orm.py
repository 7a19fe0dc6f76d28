"""The tables, and the rental entities (`domain.entities`) mapped onto them imperatively (SQLAlchemy 2).

The domain stays plain Python: importing this module maps its classes, so rows load as those same entities.

UUID keys survive a dump and restore unchanged and need no sequence, so the classic PostgreSQL trap of a
restored table whose sequence lags behind its rows (or a second owned sequence) cannot happen here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from quartet_shared.db import JSON_DOCUMENT
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
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
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
    utcnow,
)
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


def _id() -> Column[uuid.UUID]:
    return Column("id", Uuid, primary_key=True, default=uuid.uuid4)


def _col(name: str, kind: Any, *args: Any, nullable: bool = False, **kwargs: Any) -> Column[Any]:
    """A column, NOT NULL unless said otherwise (what a non-Optional attribute of the entity means)."""
    return Column(name, kind, *args, nullable=nullable, **kwargs)


def _fk(name: str, target: str, *, nullable: bool = False, ondelete: str | None = None, **kwargs: Any) -> Column[Any]:
    return _col(name, Uuid, ForeignKey(target, ondelete=ondelete), nullable=nullable, **kwargs)


def _created() -> Column[datetime]:
    return _col("created_at", UtcDateTime, default=utcnow)


def _updated() -> Column[datetime]:
    return _col("updated_at", UtcDateTime, default=utcnow, onupdate=utcnow)


metadata = Base.metadata

users = Table(
    "users",
    metadata,
    _id(),
    _col("email", String(254), unique=True),
    _col("full_name", String(200)),
    _col("role", _state(Role, "user_role")),
    _col("password_hash", String(200)),
    _col("active", Boolean, default=True),
    _created(),
    _col("token_version", Integer, default=0, server_default=text("0")),
)

houses = Table(
    "houses",
    metadata,
    _id(),
    _fk("landlord_id", "users.id"),
    _col("title", String(200)),
    _col("description", Text, default=""),
    _col("address", String(300)),
    _col("city", String(100)),
    _col("district", String(100)),
    _col("area_m2", Float),
    _col("rooms", Integer),
    _col("monthly_rent_cents", BigInteger),
    _col("deposit_cents", BigInteger),
    _col("facilities", JSON_DOCUMENT, default=list),
    _col("status", _state(HouseStatus, "house_status"), default=HouseStatus.DRAFT),
    _col("listed_available_from", Date),
    _col("available_from", Date),
    _created(),
    _updated(),
    CheckConstraint("monthly_rent_cents >= 0", name="rent_not_negative"),
    CheckConstraint("deposit_cents >= 0", name="deposit_not_negative"),
    CheckConstraint("rooms >= 0", name="rooms_not_negative"),
    CheckConstraint("area_m2 > 0", name="area_positive"),
    Index("ix_houses_search", "status", func.lower(text("city")), func.lower(text("district")), "monthly_rent_cents"),
    Index("ix_houses_landlord", "landlord_id", "status"),
    Index("ix_houses_available", "status", "available_from"),
)

house_photos = Table(
    "house_photos",
    metadata,
    _id(),
    _fk("house_id", "houses.id", ondelete="CASCADE", index=True),
    _col("url", String(2000)),
    _col("caption", String(300), default=""),
    _col("content_type", String(100)),
    _col("width", Integer),
    _col("height", Integer),
    _col("size_bytes", BigInteger),
    _col("position", Integer, default=0),
    _created(),
)

viewings = Table(
    "viewings",
    metadata,
    _id(),
    _fk("house_id", "houses.id", index=True),
    _fk("tenant_id", "users.id", index=True),
    _col("scheduled_at", UtcDateTime),
    _col("note", Text, default=""),
    _col("status", _state(ViewingStatus, "viewing_status"), default=ViewingStatus.REQUESTED),
    _created(),
    _updated(),
)

applications = Table(
    "applications",
    metadata,
    _id(),
    _fk("house_id", "houses.id"),
    _fk("tenant_id", "users.id", index=True),
    _col("start_date", Date),
    _col("end_date", Date),
    _col("message", Text, default=""),
    _col("status", _state(ApplicationStatus, "application_status"), default=ApplicationStatus.PENDING),
    _col("decision_reason", Text, nullable=True),
    _col("decided_at", UtcDateTime, nullable=True),
    _fk("decided_by", "users.id", nullable=True),
    _created(),
    CheckConstraint("end_date >= start_date", name="dates_ordered"),
    Index("ix_applications_house_status", "house_id", "status"),
)

# On PostgreSQL an exclusion constraint keeps leases of one house from overlapping; the range is
# `[start_date, end_date + 1)`, so a lease terminated before its first day (end = start - 1) is empty
# and blocks nothing.
leases = Table(
    "leases",
    metadata,
    _id(),
    _fk("house_id", "houses.id"),
    _fk("tenant_id", "users.id", index=True),
    _fk("landlord_id", "users.id", index=True),
    _fk("application_id", "applications.id", nullable=True, unique=True),
    _col("start_date", Date),
    _col("end_date", Date),
    _col("original_end_date", Date),
    _col("monthly_rent_cents", BigInteger),
    _col("deposit_cents", BigInteger),
    _col("due_day", Integer),
    _col("grace_days", Integer),
    _col("late_fee_flat_cents", BigInteger),
    _col("late_fee_percent_bps", Integer),
    _col("late_fee_cap_cents", BigInteger, nullable=True),
    _col("status", _state(LeaseStatus, "lease_status"), default=LeaseStatus.ACTIVE),
    _col("renewals", Integer, default=0),
    _col("termination_reason", Text, nullable=True),
    _col("terminated_at", UtcDateTime, nullable=True),
    _created(),
    _updated(),
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

bills = Table(
    "bills",
    metadata,
    _id(),
    _fk("lease_id", "leases.id", index=True),
    _fk("house_id", "houses.id"),
    _fk("tenant_id", "users.id", index=True),
    _col("kind", String(10)),
    _col("period_start", Date),
    _col("period_end", Date),
    _col("due_date", Date),
    _col("amount_cents", BigInteger),
    _col("late_fee_cents", BigInteger, default=0),
    _col("paid_cents", BigInteger, default=0),
    _col("status", _state(BillStatus, "bill_status"), default=BillStatus.ISSUED),
    _col("issued_at", UtcDateTime, default=utcnow),
    _col("overdue_at", UtcDateTime, nullable=True),
    _col("paid_at", UtcDateTime, nullable=True),
    _col("cancelled_at", UtcDateTime, nullable=True),
    UniqueConstraint("lease_id", "kind", "period_start", name="uq_bills_lease_period"),
    CheckConstraint("amount_cents >= 0", name="amount_not_negative"),
    CheckConstraint("late_fee_cents >= 0", name="fee_not_negative"),
    CheckConstraint("paid_cents >= 0 AND paid_cents <= amount_cents + late_fee_cents", name="paid_in_range"),
    CheckConstraint("kind IN ('rent', 'deposit')", name="kind_known"),
    Index("ix_bills_status_due", "status", "due_date"),
    Index("ix_bills_house", "house_id", "status"),
)

payments = Table(
    "payments",
    metadata,
    _id(),
    _fk("bill_id", "bills.id", index=True),
    _fk("lease_id", "leases.id"),
    _fk("house_id", "houses.id"),
    _fk("tenant_id", "users.id", index=True),
    _col("amount_cents", BigInteger),
    _col("method", String(30)),
    _col("reference", String(100), nullable=True),
    _fk("recorded_by", "users.id"),
    _col("paid_at", UtcDateTime, default=utcnow),
    UniqueConstraint("bill_id", "reference", name="uq_payments_bill_reference"),
    CheckConstraint("amount_cents > 0", name="amount_positive"),
    Index("ix_payments_house_paid", "house_id", "paid_at"),
)

maintenance_requests = Table(
    "maintenance_requests",
    metadata,
    _id(),
    _fk("house_id", "houses.id"),
    _fk("lease_id", "leases.id"),
    _fk("tenant_id", "users.id", index=True),
    _col("title", String(200)),
    _col("description", Text, default=""),
    _col("priority", String(10)),
    _col("status", _state(MaintenanceStatus, "maintenance_status"), default=MaintenanceStatus.OPEN),
    _created(),
    _updated(),
    _col("resolved_at", UtcDateTime, nullable=True),
    Index("ix_maintenance_house_status", "house_id", "status"),
)

maintenance_updates = Table(
    "maintenance_updates",
    metadata,
    _id(),
    _fk("request_id", "maintenance_requests.id", index=True),
    _fk("actor_id", "users.id"),
    _col("from_status", String(20), nullable=True),
    _col("to_status", String(20)),
    _col("note", Text, default=""),
    _created(),
)

announcements = Table(
    "announcements",
    metadata,
    _id(),
    _fk("author_id", "users.id"),
    _fk("house_id", "houses.id", nullable=True, index=True),
    _col("title", String(200)),
    _col("body", Text),
    _col("published_at", UtcDateTime, default=utcnow, index=True),
)

favourites = Table(
    "favourites",
    metadata,
    _fk("tenant_id", "users.id", primary_key=True),
    _fk("house_id", "houses.id", primary_key=True),
    _created(),
)

reviews = Table(
    "reviews",
    metadata,
    _id(),
    _fk("house_id", "houses.id", index=True),
    _fk("tenant_id", "users.id"),
    _fk("lease_id", "leases.id"),
    _col("rating", Integer),
    _col("comment", Text, default=""),
    _created(),
    UniqueConstraint("tenant_id", "house_id", name="uq_reviews_tenant_house"),
    CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
)

ENTITIES: tuple[tuple[type, Table], ...] = (
    (User, users),
    (House, houses),
    (HousePhoto, house_photos),
    (Viewing, viewings),
    (Application, applications),
    (Lease, leases),
    (Bill, bills),
    (Payment, payments),
    (MaintenanceRequest, maintenance_requests),
    (MaintenanceUpdate, maintenance_updates),
    (Announcement, announcements),
    (Favourite, favourites),
    (Review, reviews),
)

for _entity, _table in ENTITIES:
    Base.registry.map_imperatively(_entity, _table)


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

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    topic: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(200))
    ce_type: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON_DOCUMENT)
    traceparent: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
