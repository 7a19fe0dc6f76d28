"""Read models: what the service's handlers return (the API and the web UI publish or render them)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from rental_manager.domain.model import (
    ApplicationStatus,
    BillStatus,
    HouseStatus,
    LeaseStatus,
    MaintenanceStatus,
    Role,
    ViewingStatus,
)


class Record(BaseModel):
    """A read model, built from the attributes of whatever the repository holds."""

    model_config = ConfigDict(from_attributes=True)


class ViewingRecord(Record):
    """A viewing appointment."""

    id: uuid.UUID
    house_id: uuid.UUID
    tenant_id: uuid.UUID
    scheduled_at: datetime
    note: str
    status: ViewingStatus
    created_at: datetime


class ApplicationRecord(Record):
    """A rental application."""

    id: uuid.UUID
    house_id: uuid.UUID
    tenant_id: uuid.UUID
    start_date: date
    end_date: date
    message: str
    status: ApplicationStatus
    decision_reason: str | None
    decided_at: datetime | None
    created_at: datetime
    lease_id: uuid.UUID | None = None


class LeaseRecord(Record):
    """A lease and its terms."""

    id: uuid.UUID
    house_id: uuid.UUID
    tenant_id: uuid.UUID
    landlord_id: uuid.UUID
    application_id: uuid.UUID | None
    start_date: date
    end_date: date
    original_end_date: date
    monthly_rent_cents: int
    deposit_cents: int
    due_day: int
    grace_days: int
    late_fee_flat_cents: int
    late_fee_percent_bps: int
    late_fee_cap_cents: int | None
    status: LeaseStatus
    renewals: int
    termination_reason: str | None
    created_at: datetime


class BillRecord(Record):
    """A bill with what it owes and what was paid."""

    id: uuid.UUID
    lease_id: uuid.UUID
    house_id: uuid.UUID
    tenant_id: uuid.UUID
    kind: Literal["rent", "deposit"]
    period_start: date
    period_end: date
    due_date: date
    amount_cents: int
    late_fee_cents: int
    paid_cents: int
    total_cents: int
    outstanding_cents: int
    status: BillStatus
    issued_at: datetime
    paid_at: datetime | None


class PaymentRecord(Record):
    """One entry of the payments ledger."""

    id: uuid.UUID
    bill_id: uuid.UUID
    lease_id: uuid.UUID
    house_id: uuid.UUID
    tenant_id: uuid.UUID
    amount_cents: int
    method: str
    reference: str | None
    recorded_by: uuid.UUID
    paid_at: datetime


class MaintenanceStep(Record):
    """One step in a maintenance request's history."""

    actor_id: uuid.UUID
    from_status: str | None
    to_status: str
    note: str
    created_at: datetime


class MaintenanceRecord(Record):
    """A maintenance request and its history."""

    id: uuid.UUID
    house_id: uuid.UUID
    lease_id: uuid.UUID
    tenant_id: uuid.UUID
    title: str
    description: str
    priority: str
    status: MaintenanceStatus
    created_at: datetime
    resolved_at: datetime | None
    history: list[MaintenanceStep] = []


class PhotoRecord(Record):
    """A photo of a house."""

    id: uuid.UUID
    url: str
    caption: str
    content_type: str
    width: int
    height: int
    size_bytes: int
    position: int


class HouseSummary(Record):
    """A house in search results."""

    id: uuid.UUID
    landlord_id: uuid.UUID
    title: str
    address: str
    city: str
    district: str
    area_m2: float
    rooms: int
    monthly_rent_cents: int
    deposit_cents: int
    facilities: list[str]
    status: HouseStatus
    available_from: date


class HouseRecord(HouseSummary):
    """A house with everything about it."""

    description: str
    photos: list[PhotoRecord] = []
    rating_average: float | None = None
    review_count: int = 0
    created_at: datetime
    updated_at: datetime


class AnnouncementRecord(Record):
    """A published notice."""

    id: uuid.UUID
    author_id: uuid.UUID
    house_id: uuid.UUID | None
    title: str
    body: str
    published_at: datetime


class FavouriteRecord(BaseModel):
    """A saved house."""

    house: HouseSummary
    created_at: datetime


class ReviewRecord(Record):
    """A review of a house."""

    id: uuid.UUID
    house_id: uuid.UUID
    tenant_id: uuid.UUID
    rating: int
    comment: str
    created_at: datetime


class UserRecord(Record):
    """A user as others may see them."""

    id: uuid.UUID
    email: str
    full_name: str
    role: Role
    active: bool
    created_at: datetime
