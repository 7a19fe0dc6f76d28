"""Rental messages: the events the rental manager's outbox relays to `rental.events` (key = house id, or the
entity's own id for the few events no house owns) and the commands it accepts on `rental.commands`.

Every event's `ce_id` is the id of its outbox row, so a relay that publishes a row twice publishes the same
event twice, and consumers drop the second copy. Money is in integer cents; dates are ISO days.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import Field, model_validator

from quartet_contracts.registry import Message, event_type

EVENTS = "rental.events"
COMMANDS = "rental.commands"

Cents = int
HouseStatusName = Literal["draft", "listed", "unlisted", "archived"]
ViewingStatusName = Literal["requested", "confirmed", "declined", "cancelled", "completed"]
MaintenanceStatusName = Literal["open", "acknowledged", "in_progress", "resolved", "closed", "rejected", "cancelled"]
BillKind = Literal["rent", "deposit"]
BillStatusName = Literal["issued", "partially_paid", "overdue", "paid", "cancelled"]
Priority = Literal["low", "normal", "high", "urgent"]


# ---- events -----------------------------------------------------------------------------------------


@event_type("quartet.rental.UserRegistered.v1", topic=EVENTS)
class UserRegistered(Message):
    """A user account was created (key = user id; no personal data travels)."""

    user_id: UUID
    role: Literal["admin", "landlord", "tenant"]


@event_type("quartet.rental.HouseCreated.v1", topic=EVENTS)
class HouseCreated(Message):
    """A landlord added a house (as a draft unless listed at once)."""

    house_id: UUID
    landlord_id: UUID
    city: str
    district: str


@event_type("quartet.rental.HouseListed.v1", topic=EVENTS)
class HouseListed(Message):
    """A house became visible to house hunters."""

    house_id: UUID
    landlord_id: UUID
    city: str
    district: str
    rooms: int
    area_m2: float
    monthly_rent_cents: Cents
    available_from: date


@event_type("quartet.rental.HouseUpdated.v1", topic=EVENTS)
class HouseUpdated(Message):
    """A house's details or photos changed; `changed` names the fields."""

    house_id: UUID
    changed: list[str]


@event_type("quartet.rental.HouseUnlisted.v1", topic=EVENTS)
class HouseUnlisted(Message):
    """A listed house was taken off the market (it keeps its leases)."""

    house_id: UUID


@event_type("quartet.rental.HouseArchived.v1", topic=EVENTS)
class HouseArchived(Message):
    """A house was retired for good."""

    house_id: UUID


@event_type("quartet.rental.ViewingRequested.v1", topic=EVENTS)
class ViewingRequested(Message):
    """A tenant asked to view a house."""

    viewing_id: UUID
    house_id: UUID
    tenant_id: UUID
    scheduled_at: datetime


@event_type("quartet.rental.ViewingStatusChanged.v1", topic=EVENTS)
class ViewingStatusChanged(Message):
    """A viewing was confirmed, declined, cancelled or completed."""

    viewing_id: UUID
    house_id: UUID
    from_status: ViewingStatusName
    to_status: ViewingStatusName


@event_type("quartet.rental.ApplicationSubmitted.v1", topic=EVENTS)
class ApplicationSubmitted(Message):
    """A tenant applied to rent a house for a period."""

    application_id: UUID
    house_id: UUID
    tenant_id: UUID
    start_date: date
    end_date: date


@event_type("quartet.rental.ApplicationApproved.v1", topic=EVENTS)
class ApplicationApproved(Message):
    """The landlord approved an application; the lease it became is `lease_id`."""

    application_id: UUID
    house_id: UUID
    tenant_id: UUID
    lease_id: UUID


@event_type("quartet.rental.ApplicationRejected.v1", topic=EVENTS)
class ApplicationRejected(Message):
    """An application was turned down; `automatic` when another approval overlapped it."""

    application_id: UUID
    house_id: UUID
    tenant_id: UUID
    reason: str
    automatic: bool = False


@event_type("quartet.rental.ApplicationWithdrawn.v1", topic=EVENTS)
class ApplicationWithdrawn(Message):
    """The tenant withdrew a pending application."""

    application_id: UUID
    house_id: UUID
    tenant_id: UUID


@event_type("quartet.rental.LeaseSigned.v1", topic=EVENTS)
class LeaseSigned(Message):
    """A lease came into force from an approved application."""

    lease_id: UUID
    house_id: UUID
    tenant_id: UUID
    landlord_id: UUID
    start_date: date
    end_date: date
    monthly_rent_cents: Cents
    deposit_cents: Cents


@event_type("quartet.rental.LeaseRenewed.v1", topic=EVENTS)
class LeaseRenewed(Message):
    """A lease was extended to a later end."""

    lease_id: UUID
    house_id: UUID
    previous_end_date: date
    end_date: date


@event_type("quartet.rental.LeaseTerminated.v1", topic=EVENTS)
class LeaseTerminated(Message):
    """A lease was ended early; `end_date` is its new last day."""

    lease_id: UUID
    house_id: UUID
    previous_end_date: date
    end_date: date
    reason: str


@event_type("quartet.rental.LeaseEnded.v1", topic=EVENTS)
class LeaseEnded(Message):
    """A lease ran to its end."""

    lease_id: UUID
    house_id: UUID
    end_date: date


@event_type("quartet.rental.BillIssued.v1", topic=EVENTS)
class BillIssued(Message):
    """A bill (a month's rent, or the deposit) was issued to a tenant."""

    bill_id: UUID
    lease_id: UUID
    house_id: UUID
    tenant_id: UUID
    kind: BillKind
    period_start: date
    period_end: date
    due_date: date
    amount_cents: Cents


@event_type("quartet.rental.PaymentRecorded.v1", topic=EVENTS)
class PaymentRecorded(Message):
    """A payment (possibly partial) was added to the ledger against a bill."""

    payment_id: UUID
    bill_id: UUID
    lease_id: UUID
    house_id: UUID
    amount_cents: Cents
    paid_cents: Cents
    outstanding_cents: Cents
    bill_status: BillStatusName


@event_type("quartet.rental.BillOverdue.v1", topic=EVENTS)
class BillOverdue(Message):
    """A bill was still owed after its grace days; the late fee was charged."""

    bill_id: UUID
    lease_id: UUID
    house_id: UUID
    tenant_id: UUID
    due_date: date
    late_fee_cents: Cents
    outstanding_cents: Cents


@event_type("quartet.rental.BillCancelled.v1", topic=EVENTS)
class BillCancelled(Message):
    """An unpaid bill was cancelled (its period fell after an early termination)."""

    bill_id: UUID
    lease_id: UUID
    house_id: UUID
    reason: str


@event_type("quartet.rental.MaintenanceRequested.v1", topic=EVENTS)
class MaintenanceRequested(Message):
    """A tenant reported something to repair."""

    request_id: UUID
    house_id: UUID
    lease_id: UUID
    tenant_id: UUID
    title: str
    priority: Priority


@event_type("quartet.rental.MaintenanceStatusChanged.v1", topic=EVENTS)
class MaintenanceStatusChanged(Message):
    """A maintenance request moved along its status flow."""

    request_id: UUID
    house_id: UUID
    from_status: MaintenanceStatusName
    to_status: MaintenanceStatusName


@event_type("quartet.rental.MaintenanceResolved.v1", topic=EVENTS)
class MaintenanceResolved(Message):
    """The landlord reported a maintenance request fixed."""

    request_id: UUID
    house_id: UUID


@event_type("quartet.rental.AnnouncementPublished.v1", topic=EVENTS)
class AnnouncementPublished(Message):
    """An announcement was published, to everyone or to one house's tenants (key = house or announcement id)."""

    announcement_id: UUID
    house_id: UUID | None
    title: str


@event_type("quartet.rental.HouseFavourited.v1", topic=EVENTS)
class HouseFavourited(Message):
    """A tenant saved a house to their favourites."""

    house_id: UUID
    tenant_id: UUID


@event_type("quartet.rental.HouseUnfavourited.v1", topic=EVENTS)
class HouseUnfavourited(Message):
    """A tenant removed a house from their favourites."""

    house_id: UUID
    tenant_id: UUID


@event_type("quartet.rental.ReviewPosted.v1", topic=EVENTS)
class ReviewPosted(Message):
    """A tenant of a current or past lease reviewed the house."""

    review_id: UUID
    house_id: UUID
    tenant_id: UUID
    rating: int = Field(ge=1, le=5)


@event_type("quartet.rental.CommandRejected.v1", topic=EVENTS)
class CommandRejected(Message):
    """A command from `rental.commands` was refused by the rules (its id is the command's `ce_id`)."""

    command_id: str
    command_type: str
    status: int = Field(description="The HTTP status the same request would get: 403, 404, 409 or 422.")
    reason: str
    field: str | None = None


# ---- commands -----------------------------------------------------------------------------------------


class _TenantCommand(Message):
    tenant_id: UUID


@event_type("quartet.rental.SubmitApplication.v1", topic=COMMANDS)
class SubmitApplication(_TenantCommand):
    """Apply, as `tenant_id`, to rent a house for a period (key = house id)."""

    house_id: UUID
    start_date: date
    end_date: date
    message: str = Field("", max_length=2000)

    @model_validator(mode="after")
    def _ordered(self) -> SubmitApplication:
        if self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        return self


@event_type("quartet.rental.WithdrawApplication.v1", topic=COMMANDS)
class WithdrawApplication(_TenantCommand):
    """Withdraw, as `tenant_id`, a pending application (key = house id)."""

    application_id: UUID


@event_type("quartet.rental.RequestViewing.v1", topic=COMMANDS)
class RequestViewing(_TenantCommand):
    """Ask, as `tenant_id`, to view a house at a time (key = house id)."""

    house_id: UUID
    scheduled_at: datetime
    note: str = Field("", max_length=2000)


@event_type("quartet.rental.RequestMaintenance.v1", topic=COMMANDS)
class RequestMaintenance(_TenantCommand):
    """Report, as `tenant_id`, something to repair in a house the tenant lives in (key = house id)."""

    house_id: UUID
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    priority: Priority = "normal"


@event_type("quartet.rental.PayBill.v1", topic=COMMANDS)
class PayBill(_TenantCommand):
    """Pay, as `tenant_id`, part or all of a bill (key = house id); `reference` makes a retry harmless."""

    bill_id: UUID
    amount_cents: Cents = Field(gt=0)
    reference: str | None = Field(None, max_length=100)


RENTAL_COMMANDS = (SubmitApplication, WithdrawApplication, RequestViewing, RequestMaintenance, PayBill)
