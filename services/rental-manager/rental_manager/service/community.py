"""Announcements, favourites and reviews."""

from __future__ import annotations

import uuid

from quartet_contracts.schemas.rental import AnnouncementPublished, HouseFavourited, HouseUnfavourited, ReviewPosted
from sqlalchemy import or_, select

from rental_manager.adapters.orm import Announcement, Favourite, House, Lease, Review
from rental_manager.domain.model import LeaseStatus, Period, Role, tenant_may_review
from rental_manager.service.access import load_house, managed_house, require
from rental_manager.service.commands import ForgetHouse, PublishAnnouncement, ReviewHouse, SaveHouse
from rental_manager.service.errors import Conflict, Forbidden
from rental_manager.service.paging import paged
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
    who = require(actor)
    stmt = select(Announcement)
    if not who.is_admin:
        if who.role is Role.LANDLORD:
            mine = select(House.id).where(House.landlord_id == who.id)
        else:
            mine = select(Lease.house_id).where(Lease.tenant_id == who.id, Lease.status == LeaseStatus.ACTIVE)
        stmt = stmt.where(or_(Announcement.house_id.is_(None), Announcement.house_id.in_(mine)))
    order = (Announcement.published_at.desc(), Announcement.id)
    return paged(uow, stmt.order_by(*order), AnnouncementRecord, page, page_size)


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
    rows = uow.session.execute(
        select(Favourite, House)
        .join(House, House.id == Favourite.house_id)
        .where(Favourite.tenant_id == who.id)
        .order_by(Favourite.created_at.desc())
    ).all()
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
    stmt = select(Review).where(Review.house_id == house.id).order_by(Review.created_at.desc(), Review.id)
    return paged(uow, stmt, ReviewRecord, page, page_size)
