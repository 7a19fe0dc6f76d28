"""Initial schema: users, houses, viewings, applications, leases, bills, payments, maintenance, community,
the outbox and the inbox.

On PostgreSQL, `btree_gist` lets one exclusion constraint compare the house id (equality) and the lease's
date range (overlap) together, so no two leases of a house can share a day whatever the application does.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Create every table; on PostgreSQL also the extension and the lease exclusion constraint."""
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.create_table(
        "outbox",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("ce_type", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("traceparent", sa.String(length=100), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("sent_at", TIMESTAMP, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_unsent",
            ["created_at"],
            unique=False,
            postgresql_where=sa.text("sent_at IS NULL"),
            sqlite_where=sa.text("sent_at IS NULL"),
        )

    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "admin", "landlord", "tenant", name="user_role", native_enum=False, create_constraint=True, length=20
            ),
            nullable=False,
        ),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "houses",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("landlord_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("district", sa.String(length=100), nullable=False),
        sa.Column("area_m2", sa.Float(), nullable=False),
        sa.Column("rooms", sa.Integer(), nullable=False),
        sa.Column("monthly_rent_cents", sa.BigInteger(), nullable=False),
        sa.Column("deposit_cents", sa.BigInteger(), nullable=False),
        sa.Column("facilities", JSON, nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "listed",
                "unlisted",
                "archived",
                name="house_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("listed_available_from", sa.Date(), nullable=False),
        sa.Column("available_from", sa.Date(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint("area_m2 > 0", name=op.f("ck_houses_area_positive")),
        sa.CheckConstraint("deposit_cents >= 0", name=op.f("ck_houses_deposit_not_negative")),
        sa.CheckConstraint("monthly_rent_cents >= 0", name=op.f("ck_houses_rent_not_negative")),
        sa.CheckConstraint("rooms >= 0", name=op.f("ck_houses_rooms_not_negative")),
        sa.ForeignKeyConstraint(["landlord_id"], ["users.id"], name=op.f("fk_houses_landlord_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_houses")),
    )
    with op.batch_alter_table("houses", schema=None) as batch_op:
        batch_op.create_index("ix_houses_available", ["status", "available_from"], unique=False)
        batch_op.create_index("ix_houses_landlord", ["landlord_id", "status"], unique=False)
        batch_op.create_index(
            "ix_houses_search",
            ["status", sa.text("lower(city)"), sa.text("lower(district)"), "monthly_rent_cents"],
            unique=False,
        )

    op.create_table(
        "announcements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("house_id", sa.Uuid(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("published_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], name=op.f("fk_announcements_author_id_users")),
        sa.ForeignKeyConstraint(["house_id"], ["houses.id"], name=op.f("fk_announcements_house_id_houses")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_announcements")),
    )
    with op.batch_alter_table("announcements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_announcements_house_id"), ["house_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_announcements_published_at"), ["published_at"], unique=False)

    op.create_table(
        "applications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("house_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "approved",
                "rejected",
                "withdrawn",
                name="application_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("decided_at", TIMESTAMP, nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint("end_date >= start_date", name=op.f("ck_applications_dates_ordered")),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"], name=op.f("fk_applications_decided_by_users")),
        sa.ForeignKeyConstraint(["house_id"], ["houses.id"], name=op.f("fk_applications_house_id_houses")),
        sa.ForeignKeyConstraint(["tenant_id"], ["users.id"], name=op.f("fk_applications_tenant_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applications")),
    )
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.create_index("ix_applications_house_status", ["house_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_applications_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "favourites",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("house_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["house_id"], ["houses.id"], name=op.f("fk_favourites_house_id_houses")),
        sa.ForeignKeyConstraint(["tenant_id"], ["users.id"], name=op.f("fk_favourites_tenant_id_users")),
        sa.PrimaryKeyConstraint("tenant_id", "house_id", name=op.f("pk_favourites")),
    )
    op.create_table(
        "house_photos",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("house_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("caption", sa.String(length=300), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["house_id"], ["houses.id"], name=op.f("fk_house_photos_house_id_houses"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_house_photos")),
    )
    with op.batch_alter_table("house_photos", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_house_photos_house_id"), ["house_id"], unique=False)

    op.create_table(
        "viewings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("house_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("scheduled_at", TIMESTAMP, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "requested",
                "confirmed",
                "declined",
                "cancelled",
                "completed",
                name="viewing_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["house_id"], ["houses.id"], name=op.f("fk_viewings_house_id_houses")),
        sa.ForeignKeyConstraint(["tenant_id"], ["users.id"], name=op.f("fk_viewings_tenant_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_viewings")),
    )
    with op.batch_alter_table("viewings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_viewings_house_id"), ["house_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_viewings_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "leases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("house_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("landlord_id", sa.Uuid(), nullable=False),
        sa.Column("application_id", sa.Uuid(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("original_end_date", sa.Date(), nullable=False),
        sa.Column("monthly_rent_cents", sa.BigInteger(), nullable=False),
        sa.Column("deposit_cents", sa.BigInteger(), nullable=False),
        sa.Column("due_day", sa.Integer(), nullable=False),
        sa.Column("grace_days", sa.Integer(), nullable=False),
        sa.Column("late_fee_flat_cents", sa.BigInteger(), nullable=False),
        sa.Column("late_fee_percent_bps", sa.Integer(), nullable=False),
        sa.Column("late_fee_cap_cents", sa.BigInteger(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "ended",
                "terminated",
                name="lease_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("renewals", sa.Integer(), nullable=False),
        sa.Column("termination_reason", sa.Text(), nullable=True),
        sa.Column("terminated_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint("deposit_cents >= 0", name=op.f("ck_leases_deposit_not_negative")),
        sa.CheckConstraint("due_day BETWEEN 1 AND 28", name=op.f("ck_leases_due_day_in_month")),
        sa.CheckConstraint("end_date >= start_date - 1", name=op.f("ck_leases_dates_ordered")),
        sa.CheckConstraint("monthly_rent_cents >= 0", name=op.f("ck_leases_rent_not_negative")),
        sa.ForeignKeyConstraint(
            ["application_id"], ["applications.id"], name=op.f("fk_leases_application_id_applications")
        ),
        sa.ForeignKeyConstraint(["house_id"], ["houses.id"], name=op.f("fk_leases_house_id_houses")),
        sa.ForeignKeyConstraint(["landlord_id"], ["users.id"], name=op.f("fk_leases_landlord_id_users")),
        sa.ForeignKeyConstraint(["tenant_id"], ["users.id"], name=op.f("fk_leases_tenant_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leases")),
        sa.UniqueConstraint("application_id", name=op.f("uq_leases_application_id")),
    )
    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.create_index("ix_leases_house", ["house_id", "start_date"], unique=False)
        batch_op.create_index(batch_op.f("ix_leases_landlord_id"), ["landlord_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_leases_tenant_id"), ["tenant_id"], unique=False)

    if postgres:
        op.execute(
            "ALTER TABLE leases ADD CONSTRAINT leases_no_overlap "
            "EXCLUDE USING gist (house_id WITH =, daterange(start_date, end_date + 1) WITH &&)"
        )

    op.create_table(
        "bills",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("lease_id", sa.Uuid(), nullable=False),
        sa.Column("house_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("late_fee_cents", sa.BigInteger(), nullable=False),
        sa.Column("paid_cents", sa.BigInteger(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "issued",
                "partially_paid",
                "overdue",
                "paid",
                "cancelled",
                name="bill_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("issued_at", TIMESTAMP, nullable=False),
        sa.Column("overdue_at", TIMESTAMP, nullable=True),
        sa.Column("paid_at", TIMESTAMP, nullable=True),
        sa.Column("cancelled_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint("kind IN ('rent', 'deposit')", name=op.f("ck_bills_kind_known")),
        sa.CheckConstraint("amount_cents >= 0", name=op.f("ck_bills_amount_not_negative")),
        sa.CheckConstraint("late_fee_cents >= 0", name=op.f("ck_bills_fee_not_negative")),
        sa.CheckConstraint(
            "paid_cents >= 0 AND paid_cents <= amount_cents + late_fee_cents", name=op.f("ck_bills_paid_in_range")
        ),
        sa.ForeignKeyConstraint(["house_id"], ["houses.id"], name=op.f("fk_bills_house_id_houses")),
        sa.ForeignKeyConstraint(["lease_id"], ["leases.id"], name=op.f("fk_bills_lease_id_leases")),
        sa.ForeignKeyConstraint(["tenant_id"], ["users.id"], name=op.f("fk_bills_tenant_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bills")),
        sa.UniqueConstraint("lease_id", "kind", "period_start", name="uq_bills_lease_period"),
    )
    with op.batch_alter_table("bills", schema=None) as batch_op:
        batch_op.create_index("ix_bills_house", ["house_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_bills_lease_id"), ["lease_id"], unique=False)
        batch_op.create_index("ix_bills_status_due", ["status", "due_date"], unique=False)
        batch_op.create_index(batch_op.f("ix_bills_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "maintenance_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("house_id", sa.Uuid(), nullable=False),
        sa.Column("lease_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(length=10), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "acknowledged",
                "in_progress",
                "resolved",
                "closed",
                "rejected",
                "cancelled",
                name="maintenance_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("resolved_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["house_id"], ["houses.id"], name=op.f("fk_maintenance_requests_house_id_houses")),
        sa.ForeignKeyConstraint(["lease_id"], ["leases.id"], name=op.f("fk_maintenance_requests_lease_id_leases")),
        sa.ForeignKeyConstraint(["tenant_id"], ["users.id"], name=op.f("fk_maintenance_requests_tenant_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_requests")),
    )
    with op.batch_alter_table("maintenance_requests", schema=None) as batch_op:
        batch_op.create_index("ix_maintenance_house_status", ["house_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_maintenance_requests_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "reviews",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("house_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("lease_id", sa.Uuid(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_reviews_rating_range")),
        sa.ForeignKeyConstraint(["house_id"], ["houses.id"], name=op.f("fk_reviews_house_id_houses")),
        sa.ForeignKeyConstraint(["lease_id"], ["leases.id"], name=op.f("fk_reviews_lease_id_leases")),
        sa.ForeignKeyConstraint(["tenant_id"], ["users.id"], name=op.f("fk_reviews_tenant_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
        sa.UniqueConstraint("tenant_id", "house_id", name="uq_reviews_tenant_house"),
    )
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reviews_house_id"), ["house_id"], unique=False)

    op.create_table(
        "maintenance_updates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_maintenance_updates_actor_id_users")),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["maintenance_requests.id"],
            name=op.f("fk_maintenance_updates_request_id_maintenance_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_updates")),
    )
    with op.batch_alter_table("maintenance_updates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_maintenance_updates_request_id"), ["request_id"], unique=False)

    op.create_table(
        "payments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("bill_id", sa.Uuid(), nullable=False),
        sa.Column("lease_id", sa.Uuid(), nullable=False),
        sa.Column("house_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("method", sa.String(length=30), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("paid_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint("amount_cents > 0", name=op.f("ck_payments_amount_positive")),
        sa.ForeignKeyConstraint(["bill_id"], ["bills.id"], name=op.f("fk_payments_bill_id_bills")),
        sa.ForeignKeyConstraint(["house_id"], ["houses.id"], name=op.f("fk_payments_house_id_houses")),
        sa.ForeignKeyConstraint(["lease_id"], ["leases.id"], name=op.f("fk_payments_lease_id_leases")),
        sa.ForeignKeyConstraint(["recorded_by"], ["users.id"], name=op.f("fk_payments_recorded_by_users")),
        sa.ForeignKeyConstraint(["tenant_id"], ["users.id"], name=op.f("fk_payments_tenant_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("bill_id", "reference", name="uq_payments_bill_reference"),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payments_bill_id"), ["bill_id"], unique=False)
        batch_op.create_index("ix_payments_house_paid", ["house_id", "paid_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_payments_tenant_id"), ["tenant_id"], unique=False)

    # The inbox is the kernel's processed_messages table (claim_message). Other services sharing the database
    # may have created it already (the kernel creates it on demand), so it is created only where missing.
    if not sa.inspect(op.get_bind()).has_table("processed_messages"):
        _create_inbox()


def _create_inbox() -> None:
    op.create_table(
        "processed_messages",
        sa.Column("consumer", sa.String(length=200), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("processed_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("consumer", "message_id", name=op.f("pk_processed_messages")),
    )


def downgrade() -> None:
    """Drop this service's tables (processed_messages and btree_gist stay: the kernel and others share them)."""
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_tenant_id"))
        batch_op.drop_index("ix_payments_house_paid")
        batch_op.drop_index(batch_op.f("ix_payments_bill_id"))

    op.drop_table("payments")
    with op.batch_alter_table("maintenance_updates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_maintenance_updates_request_id"))

    op.drop_table("maintenance_updates")
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reviews_house_id"))

    op.drop_table("reviews")
    with op.batch_alter_table("maintenance_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_maintenance_requests_tenant_id"))
        batch_op.drop_index("ix_maintenance_house_status")

    op.drop_table("maintenance_requests")
    with op.batch_alter_table("bills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bills_tenant_id"))
        batch_op.drop_index("ix_bills_status_due")
        batch_op.drop_index(batch_op.f("ix_bills_lease_id"))
        batch_op.drop_index("ix_bills_house")

    op.drop_table("bills")
    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_leases_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_leases_landlord_id"))
        batch_op.drop_index("ix_leases_house")

    op.drop_table("leases")
    with op.batch_alter_table("viewings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_viewings_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_viewings_house_id"))

    op.drop_table("viewings")
    with op.batch_alter_table("house_photos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_house_photos_house_id"))

    op.drop_table("house_photos")
    op.drop_table("favourites")
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_applications_tenant_id"))
        batch_op.drop_index("ix_applications_house_status")

    op.drop_table("applications")
    with op.batch_alter_table("announcements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_announcements_published_at"))
        batch_op.drop_index(batch_op.f("ix_announcements_house_id"))

    op.drop_table("announcements")
    with op.batch_alter_table("houses", schema=None) as batch_op:
        batch_op.drop_index("ix_houses_search")
        batch_op.drop_index("ix_houses_landlord")
        batch_op.drop_index("ix_houses_available")

    op.drop_table("houses")
    op.drop_table("users")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_outbox_unsent", postgresql_where=sa.text("sent_at IS NULL"), sqlite_where=sa.text("sent_at IS NULL")
        )

    op.drop_table("outbox")
