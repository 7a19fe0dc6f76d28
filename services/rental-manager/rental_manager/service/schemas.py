"""Request and response models of the HTTP API and the web UI (XCreate in, XPublic out).

The bodies of commands (XCreate) and the read models (XPublic) are the service's own, published here
under their HTTP names; the rest are still defined here.

Every text field refuses NUL characters and every number and date has bounds, so nothing a client sends
can reach the database as a value it would reject: bad input is a 422 naming the field, never a 500.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from rental_manager.service.commands import (
    AnnouncementTerms,
    ApplicationTerms,
    CreateUser,
    HouseChanges,
    ListHouse,
    MaintenanceTerms,
    PaymentTerms,
    PhotoTerms,
    RegisterUser,
    ReviewTerms,
    ViewingTerms,
)
from rental_manager.service.fields import (
    Cents,
    Day,
    Place,
)

T = TypeVar("T")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    """One page of results and how many there are in all."""

    items: list[T]
    total: int
    page: int
    page_size: int


# ---- users -------------------------------------------------------------------------------------------


class UserCreate(RegisterUser):
    """Sign up as a tenant or a landlord (admins create admins)."""


class AdminUserCreate(CreateUser):
    """An admin creating any kind of user."""


class Token(BaseModel):
    """An OAuth2 bearer token."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


# ---- houses ------------------------------------------------------------------------------------------


class HouseCreate(ListHouse):
    """A new house; a landlord owns it (an admin names the landlord)."""


class HouseUpdate(HouseChanges):
    """Changes to a house's details; absent fields stay as they are, others (read-only or unknown) are a 422."""


class PhotoCreate(PhotoTerms):
    """A photo's metadata; the image itself is served from `url`."""


SortKey = Literal["rent_asc", "rent_desc", "area_asc", "area_desc", "rooms_desc", "newest", "available_from"]


class HouseQuery(BaseModel):
    """Search filters for listed houses, with sorting and paging."""

    city: Place | None = None
    district: Place | None = None
    min_rent_cents: Cents | None = None
    max_rent_cents: Cents | None = None
    min_rooms: Annotated[int, Field(ge=0, le=100)] | None = None
    max_rooms: Annotated[int, Field(ge=0, le=100)] | None = None
    min_area_m2: Annotated[float, Field(ge=0, le=100_000, allow_inf_nan=False)] | None = None
    max_area_m2: Annotated[float, Field(ge=0, le=100_000, allow_inf_nan=False)] | None = None
    available_from: Day | None = None
    sort: SortKey = "newest"
    page: Annotated[int, Field(ge=1, le=10_000)] = 1
    page_size: Annotated[int, Field(ge=1, le=100)] = 20

    @field_validator("max_rent_cents", "max_rooms", "max_area_m2")
    @classmethod
    def _not_below_min(cls, value: float | None, info: ValidationInfo) -> float | None:
        low = info.data.get("min_" + info.field_name.removeprefix("max_")) if info.field_name else None
        if value is not None and low is not None and value < low:
            raise ValueError(f"must not be below min_{str(info.field_name).removeprefix('max_')}")
        return value

    def places(self) -> dict[str, str]:
        """The city and district asked for, in lower case (the search compares them case-insensitively)."""
        asked = {"city": self.city, "district": self.district}
        return {name: value.strip().lower() for name, value in asked.items() if value}

    def limits(self) -> list[tuple[str, bool, object]]:
        """(house field, True for a lower bound and False for an upper one, the bound) of every bound asked for."""
        bounds: list[tuple[str, bool, object]] = [
            ("monthly_rent_cents", True, self.min_rent_cents),
            ("monthly_rent_cents", False, self.max_rent_cents),
            ("rooms", True, self.min_rooms),
            ("rooms", False, self.max_rooms),
            ("area_m2", True, self.min_area_m2),
            ("area_m2", False, self.max_area_m2),
            # Available by the day asked for: free from that day or earlier.
            ("available_from", False, self.available_from),
        ]
        return [bound for bound in bounds if bound[2] is not None]

    def cache_key(self) -> str:
        """A stable key for this query (every field, in a fixed order)."""
        fields = self.model_dump(mode="json")
        for name in ("city", "district"):
            if fields[name] is not None:
                fields[name] = fields[name].strip().lower()  # the search compares them case-insensitively
        return "&".join(f"{k}={'' if v is None else v}" for k, v in fields.items())


# ---- viewings, applications, leases --------------------------------------------------------------------


class ViewingCreate(ViewingTerms):
    """Ask to view a house at a time."""


class ViewingTransition(BaseModel):
    """Move a viewing to another status."""

    status: Literal["confirmed", "declined", "cancelled", "completed"]


class ApplicationCreate(ApplicationTerms):
    """Apply to rent a house from `start_date` to `end_date` (both included)."""


# ---- bills and payments --------------------------------------------------------------------------------


class PaymentCreate(PaymentTerms):
    """Pay part or all of a bill; the same `reference` twice records one payment."""


class BillingRun(BaseModel):
    """Run bill generation, overdue marking and lease ending as of a day."""

    as_of: Day


class BillingReport(BaseModel):
    """What a billing run did."""

    as_of: date
    bills_issued: int
    bills_overdue: int
    leases_ended: int


# ---- maintenance, announcements, favourites, reviews ------------------------------------------------------


class MaintenanceCreate(MaintenanceTerms):
    """Report something to repair."""


class AnnouncementCreate(AnnouncementTerms):
    """A notice: to everyone (admins only) or to one house's tenants."""


class ReviewCreate(ReviewTerms):
    """A tenant's review: 1 to 5 stars and a comment."""


# ---- statistics ------------------------------------------------------------------------------------------


class MonthStats(BaseModel):
    """One calendar month: occupancy (let house-days over house-days), income received, rent billed."""

    month: str
    occupancy_rate: float
    income_cents: int
    billed_cents: int


class Stats(BaseModel):
    """Occupancy, income per month and overdue amounts over the houses the caller manages."""

    houses: int
    occupied_today: int
    occupancy_rate_today: float
    overdue_bills: int
    overdue_cents: int
    months: list[MonthStats]
