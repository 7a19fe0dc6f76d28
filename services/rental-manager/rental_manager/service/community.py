"""Announcements, favourites and reviews."""

from __future__ import annotations

import uuid

from quartet_contracts.schemas.rental import AnnouncementPublished, HouseFavourited, HouseUnfavourited, ReviewPosted

from rental_manager.domain.entities import Announcement, Favourite, Review
from rental_manager.domain.model import Period, Role, tenant_may_review
from rental_manager.service.access import load_house, managed_house, require
from rental_manager.service.commands import ForgetHouse, PublishAnnouncement, ReviewHouse, SaveHouse
from rental_manager.service.errors import Conflict, Forbidden
from rental_manager.service.paging import Order, Window, paged
from rental_manager.service.read_models import AnnouncementRecord, FavouriteRecord, HouseSummary, ReviewRecord
from rental_manager.service.schemas import Page
from rental_manager.service.unit import Actor, UnitOfWork

# ---- announcements ---------------------------------------------------------------------------------------


def publish_announcement(uow: UnitOfWork, actor: Actor | None, data: PublishAnnouncement) -> AnnouncementRecord:
    """Publish a notice: admins to everyone or one house, landlords to one of their houses."""
    who = require(actor, Role.ADMIN, Role.LANDLORD)
    if data.house_id is None and not who.is_admin:
        raise Forbidden("only admins publish to everyone; name one of your houses")
    if data.house_id is not None:
        managed_house(uow, who, data.house_id)
    note = Announcement(
        id=uuid.uuid4(),
        author_id=who.id,
        house_id=data.house_id,
        title=data.title,
        body=data.body,
        published_at=uow.now,
    )
    uow.announcements.add(note)
    uow.emit(
        AnnouncementPublished(announcement_id=note.id, house_id=note.house_id, title=note.title),
        key=note.house_id or note.id,
    )
    return AnnouncementRecord.model_validate(note)


def list_announcements(
    uow: UnitOfWork, actor: Actor | None, page: int = 1, page_size: int = 50
) -> Page[AnnouncementRecord]:
    """Notices for the caller: everyone's, plus those of houses they manage or currently rent."""
    window = Window(page, page_size)
    found = uow.announcements.visible_to(require(actor), Order("published_at"), window)
    return paged(found, AnnouncementRecord, window)


# ---- favourites ------------------------------------------------------------------------------------------


def add_favourite(uow: UnitOfWork, actor: Actor | None, data: SaveHouse) -> FavouriteRecord:
    """Save a house (saving it again changes nothing)."""
    who = require(actor, Role.TENANT)
    house = load_house(uow, who, data.house_id)
    existing = uow.favourites.get(who.id, house.id)
    if existing is None:
        existing = Favourite(tenant_id=who.id, house_id=house.id, created_at=uow.now)
        uow.favourites.add(existing)
        uow.emit(HouseFavourited(house_id=house.id, tenant_id=who.id), key=house.id)
    return FavouriteRecord(house=HouseSummary.model_validate(house), created_at=existing.created_at)


def remove_favourite(uow: UnitOfWork, actor: Actor | None, data: ForgetHouse) -> None:
    """Forget a saved house (forgetting one not saved changes nothing)."""
    who = require(actor, Role.TENANT)
    existing = uow.favourites.get(who.id, data.house_id)
    if existing is not None:
        uow.favourites.remove(existing)
        uow.emit(HouseUnfavourited(house_id=data.house_id, tenant_id=who.id), key=data.house_id)


def list_favourites(uow: UnitOfWork, actor: Actor | None) -> list[FavouriteRecord]:
    """The caller's saved houses that are still visible to them, newest first."""
    who = require(actor, Role.TENANT)
    rows = uow.favourites.of_tenant(who.id)
    return [FavouriteRecord(house=HouseSummary.model_validate(h), created_at=f.created_at) for f, h in rows]


# ---- reviews ---------------------------------------------------------------------------------------------


def post_review(uow: UnitOfWork, actor: Actor | None, data: ReviewHouse) -> ReviewRecord:
    """Review a house, as a tenant of one of its current or past leases (once per tenant and house)."""
    who = require(actor, Role.TENANT)
    house_id = data.house_id
    leases = uow.leases.of_tenant(house_id, who.id)
    if not leases:
        load_house(uow, who, house_id)  # 404 when the house is not visible at all
    if not tenant_may_review([Period(lease.start_date, lease.end_date) for lease in leases], uow.today):
        raise Forbidden("only tenants of a current or past lease may review this house")
    if uow.reviews.by(house_id, who.id) is not None:
        raise Conflict("you have reviewed this house already")
    lease_id = max(leases, key=lambda lease: lease.start_date).id
    review = Review(
        id=uuid.uuid4(),
        house_id=house_id,
        tenant_id=who.id,
        lease_id=lease_id,
        rating=data.rating,
        comment=data.comment,
        created_at=uow.now,
    )
    uow.reviews.add(review)
    uow.emit(ReviewPosted(review_id=review.id, house_id=house_id, tenant_id=who.id, rating=data.rating), key=house_id)
    return ReviewRecord.model_validate(review)


def list_reviews(
    uow: UnitOfWork, actor: Actor | None, house_id: uuid.UUID, page: int = 1, page_size: int = 50
) -> Page[ReviewRecord]:
    """Reviews of a house the caller may see."""
    house = load_house(uow, actor, house_id)
    window = Window(page, page_size)
    return paged(uow.reviews.of_house(house.id, Order("created_at"), window), ReviewRecord, window)
