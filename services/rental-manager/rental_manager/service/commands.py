"""Commands: what a caller asks the service to do, in the imperative, the same from the API, the web UI and the
Kafka command worker. Each is validated when built; the handler that carries it out takes it whole."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from rental_manager.domain.model import HouseStatus, ViewingStatus
from rental_manager.service.fields import (
    MAX_CENTS,
    Cents,
    Day,
    Email,
    Facility,
    Moment,
    Name,
    Password,
    Place,
    Priority,
    Text,
)


class Command(BaseModel):
    """A request to change something; immutable once built."""

    model_config = ConfigDict(frozen=True)


class ViewingTerms(BaseModel):
    """Ask to view a house at a time."""

    scheduled_at: Moment
    note: Annotated[Text, Field(max_length=2000)] = ""


class ApplicationTerms(BaseModel):
    """Apply to rent a house from `start_date` to `end_date` (both included)."""

    start_date: Day
    end_date: Day
    message: Annotated[Text, Field(max_length=2000)] = ""

    @field_validator("end_date")
    @classmethod
    def _ordered(cls, value: date, info: ValidationInfo) -> date:
        start = info.data.get("start_date")
        if start is not None and value < start:
            raise ValueError("must not be before start_date")
        return value


class PaymentTerms(BaseModel):
    """Pay part or all of a bill; the same `reference` twice records one payment."""

    amount_cents: Annotated[int, Field(gt=0, le=MAX_CENTS)]
    method: Literal["card", "bank_transfer", "cash", "other"] = "card"
    reference: Annotated[Text, Field(min_length=1, max_length=100)] | None = None


class MaintenanceTerms(BaseModel):
    """Report something to repair."""

    title: Name
    description: Annotated[Text, Field(max_length=4000)] = ""
    priority: Priority = "normal"


class Decision(BaseModel):
    """A landlord's reason for a decision (optional)."""

    reason: Annotated[Text, Field(max_length=2000)] = ""


class LeaseRenewal(BaseModel):
    """Extend a lease to a later last day."""

    end_date: Day


class LeaseTermination(BaseModel):
    """End a lease early: `end_date` becomes its last day."""

    end_date: Day
    reason: Annotated[Text, Field(min_length=1, max_length=2000)]


class ApplyForHouse(ApplicationTerms, Command):
    """Apply, as a tenant, to rent a house for a period."""

    house_id: uuid.UUID


class WithdrawApplication(Command):
    """Withdraw, as its applicant, a pending application."""

    application_id: uuid.UUID


class RequestViewing(ViewingTerms, Command):
    """Ask, as a tenant, to view a house at a time."""

    house_id: uuid.UUID


class RequestMaintenance(MaintenanceTerms, Command):
    """Report, as a tenant living there, something to repair in a house."""

    house_id: uuid.UUID


class PayBill(PaymentTerms, Command):
    """Pay part or all of a bill (its tenant), or record a payment on it (its landlord)."""

    bill_id: uuid.UUID


class SignLease(Decision, Command):
    """Approve an application (its house's landlord): the lease is signed and overlapping applications rejected."""

    application_id: uuid.UUID


class RejectApplication(Decision, Command):
    """Turn an application down (its house's landlord)."""

    application_id: uuid.UUID


class RenewLease(LeaseRenewal, Command):
    """Extend a lease to a later last day (its landlord)."""

    lease_id: uuid.UUID


class TerminateLease(LeaseTermination, Command):
    """End a lease early (either side): `end_date` becomes its last day."""

    lease_id: uuid.UUID


class ListHouse(Command):
    """Add a house (a landlord, or an admin naming the landlord), listed at once when `list_now`."""

    title: Name
    description: Annotated[Text, Field(max_length=10_000)] = ""
    address: Annotated[Text, Field(min_length=1, max_length=300)]
    city: Place
    district: Place
    area_m2: Annotated[float, Field(gt=0, le=100_000, allow_inf_nan=False)]
    rooms: Annotated[int, Field(ge=0, le=100)]
    monthly_rent_cents: Cents
    deposit_cents: Cents = 0
    facilities: Annotated[list[Facility], Field(max_length=50)] = []
    available_from: Day | None = None
    list_now: bool = False
    landlord_id: uuid.UUID | None = None


class MaintenanceTransition(BaseModel):
    """Move a maintenance request along its flow."""

    status: Literal["acknowledged", "in_progress", "resolved", "closed", "rejected", "cancelled"]
    note: Annotated[Text, Field(max_length=2000)] = ""


class MoveMaintenance(MaintenanceTransition, Command):
    """Move a maintenance request along its flow (the domain decides which side may make which move)."""

    request_id: uuid.UUID


class ChangeViewing(Command):
    """Confirm, decline or complete (the landlord) or cancel (either side) a viewing."""

    viewing_id: uuid.UUID
    status: ViewingStatus


class AnnouncementTerms(BaseModel):
    """A notice: to everyone (admins only) or to one house's tenants."""

    title: Name
    body: Annotated[Text, Field(min_length=1, max_length=10_000)]
    house_id: uuid.UUID | None = None


class PublishAnnouncement(AnnouncementTerms, Command):
    """Publish a notice: admins to everyone or one house, landlords to one of their houses."""


class ReviewTerms(BaseModel):
    """A tenant's review: 1 to 5 stars and a comment."""

    rating: Annotated[int, Field(ge=1, le=5)]
    comment: Annotated[Text, Field(max_length=4000)] = ""


class ReviewHouse(ReviewTerms, Command):
    """Review a house, as a tenant of one of its current or past leases (once per tenant and house)."""

    house_id: uuid.UUID


class SaveHouse(Command):
    """Save a house to the tenant's favourites (saving it again changes nothing)."""

    house_id: uuid.UUID


class ForgetHouse(Command):
    """Remove a house from the tenant's favourites (one not saved changes nothing)."""

    house_id: uuid.UUID


class HouseChanges(BaseModel):
    """Changes to a house's details; absent fields stay as they are, others (read-only or unknown) are a 422."""

    # A PATCH that silently dropped `landlord_id` or a misspelt field would tell the client it succeeded.
    model_config = ConfigDict(extra="forbid")

    title: Name | None = None
    description: Annotated[Text, Field(max_length=10_000)] | None = None
    address: Annotated[Text, Field(min_length=1, max_length=300)] | None = None
    city: Place | None = None
    district: Place | None = None
    area_m2: Annotated[float, Field(gt=0, le=100_000, allow_inf_nan=False)] | None = None
    rooms: Annotated[int, Field(ge=0, le=100)] | None = None
    monthly_rent_cents: Cents | None = None
    deposit_cents: Cents | None = None
    facilities: Annotated[list[Facility], Field(max_length=50)] | None = None
    available_from: Day | None = None


class PhotoTerms(BaseModel):
    """A photo's metadata; the image itself is served from `url`."""

    url: Annotated[Text, Field(min_length=8, max_length=2000, pattern=r"^https?://[^\s]+$")]
    caption: Annotated[Text, Field(max_length=300)] = ""
    content_type: Annotated[str, Field(pattern=r"^image/(jpeg|png|webp|gif|avif)$")] = "image/jpeg"
    width: Annotated[int, Field(gt=0, le=20_000)]
    height: Annotated[int, Field(gt=0, le=20_000)]
    size_bytes: Annotated[int, Field(gt=0, le=100_000_000)]


class UpdateHouse(HouseChanges, Command):
    """Change a house's details (its landlord or an admin); only the fields given change."""

    house_id: uuid.UUID


class ChangeHouseStatus(Command):
    """List, unlist or archive a house (its landlord or an admin)."""

    house_id: uuid.UUID
    status: HouseStatus


class AddPhoto(PhotoTerms, Command):
    """Attach a photo's metadata to a house (its landlord or an admin)."""

    house_id: uuid.UUID


class RemovePhoto(Command):
    """Detach a photo from a house (its landlord or an admin)."""

    house_id: uuid.UUID
    photo_id: uuid.UUID


class RegisterUser(Command):
    """Sign up as a tenant or a landlord."""

    email: Email
    password: Password
    full_name: Name
    role: Literal["tenant", "landlord"] = "tenant"


class CreateUser(RegisterUser):
    """Create an account of any kind, admins included (admins only)."""

    role: Literal["tenant", "landlord", "admin"] = "tenant"  # type: ignore[assignment]
