"""Houses: listing, details, photos, and the search over listed houses (uncached; see search.py)."""

from __future__ import annotations

import uuid

from quartet_contracts.schemas.rental import HouseArchived, HouseCreated, HouseListed, HouseUnlisted, HouseUpdated

from rental_manager.domain.entities import House, HousePhoto
from rental_manager.domain.errors import RuleViolation
from rental_manager.domain.model import HOUSE, HouseStatus, Role, available_from
from rental_manager.service.access import load_house, managed_house, require
from rental_manager.service.commands import AddPhoto, ChangeHouseStatus, ListHouse, RemovePhoto, UpdateHouse
from rental_manager.service.errors import Forbidden, NotFound
from rental_manager.service.paging import Order, Window, paged
from rental_manager.service.read_models import HouseRecord, HouseSummary, PhotoRecord
from rental_manager.service.schemas import HouseQuery, Page
from rental_manager.service.unit import Actor, UnitOfWork

MAX_PHOTOS = 30

# The search's sort keys (ties broken by id, ascending).
SORTS: dict[str, Order] = {
    "rent_asc": Order("monthly_rent_cents", descending=False),
    "rent_desc": Order("monthly_rent_cents"),
    "area_asc": Order("area_m2", descending=False),
    "area_desc": Order("area_m2"),
    "rooms_desc": Order("rooms"),
    "newest": Order("created_at"),
    "available_from": Order("available_from", descending=False),
}


def _public(uow: UnitOfWork, house: House) -> HouseRecord:
    photos = uow.houses.photos(house.id)
    count, average = uow.reviews.rating(house.id)
    summary = HouseSummary.model_validate(house).model_dump()
    return HouseRecord(
        **summary,
        description=house.description,
        photos=[PhotoRecord.model_validate(p) for p in photos],
        rating_average=round(average, 2) if average is not None else None,
        review_count=count,
        created_at=house.created_at,
        updated_at=house.updated_at,
    )


def _listed_event(house: House) -> HouseListed:
    return HouseListed(
        house_id=house.id,
        landlord_id=house.landlord_id,
        city=house.city,
        district=house.district,
        rooms=house.rooms,
        area_m2=house.area_m2,
        monthly_rent_cents=house.monthly_rent_cents,
        available_from=house.available_from,
    )


def may_add_houses(actor: Actor | None) -> Actor:
    """The actor, if they may add houses (landlords and admins); Forbidden otherwise."""
    return require(actor, Role.LANDLORD, Role.ADMIN)


def create_house(uow: UnitOfWork, actor: Actor | None, data: ListHouse) -> HouseRecord:
    """Add a house, owned by the calling landlord (or, for an admin, by the landlord named)."""
    who = may_add_houses(actor)
    landlord_id = who.id
    if not who.is_admin and data.landlord_id not in (None, who.id):
        raise Forbidden("landlords add houses of their own")
    if who.is_admin:
        landlord = uow.users.get(data.landlord_id) if data.landlord_id is not None else None
        if landlord is None or landlord.role is not Role.LANDLORD:
            raise NotFound("landlord", data.landlord_id)
        landlord_id = landlord.id
    start = data.available_from or uow.today
    house = House(
        id=uuid.uuid4(),
        landlord_id=landlord_id,
        title=data.title,
        description=data.description,
        address=data.address,
        city=data.city.strip(),
        district=data.district.strip(),
        area_m2=data.area_m2,
        rooms=data.rooms,
        monthly_rent_cents=data.monthly_rent_cents,
        deposit_cents=data.deposit_cents,
        facilities=sorted(set(data.facilities)),
        status=HouseStatus.DRAFT,
        listed_available_from=start,
        available_from=start,
        created_at=uow.now,
        updated_at=uow.now,
    )
    uow.houses.add(house)
    uow.emit(
        HouseCreated(house_id=house.id, landlord_id=landlord_id, city=house.city, district=house.district), key=house.id
    )
    if data.list_now:
        HOUSE.check(house.status, HouseStatus.LISTED, who.party)
        house.status = HouseStatus.LISTED
        uow.emit(_listed_event(house), key=house.id)
    return _public(uow, house)


def get_house(uow: UnitOfWork, actor: Actor | None, house_id: uuid.UUID) -> HouseRecord:
    """A house with its photos and rating (listed ones for anyone; others for their landlord and admins)."""
    return _public(uow, load_house(uow, actor, house_id))


def update_house(uow: UnitOfWork, actor: Actor | None, data: UpdateHouse) -> HouseRecord:
    """Change a house's details."""
    house = managed_house(uow, actor, data.house_id, lock=True)
    if house.status is HouseStatus.ARCHIVED:
        HOUSE.check(house.status, HouseStatus.LISTED)  # an archived house is final: this raises
    changes = data.model_dump(exclude_unset=True, exclude_none=True, exclude={"house_id"})
    changed: list[str] = []
    for name, value in changes.items():
        if name == "available_from":
            house.listed_available_from = value
            house.available_from = available_from(value, uow.leases.active_ends(house.id))
        elif name == "facilities":
            value = sorted(set(value))
        if name != "available_from":
            setattr(house, name, value.strip() if name in ("city", "district") else value)
        changed.append(name)
    if changed:
        house.updated_at = uow.now
        uow.emit(HouseUpdated(house_id=house.id, changed=sorted(changed)), key=house.id)
    return _public(uow, house)


def change_status(uow: UnitOfWork, actor: Actor | None, data: ChangeHouseStatus) -> HouseRecord:
    """List, unlist or archive a house."""
    house = managed_house(uow, actor, data.house_id, lock=True)
    target = data.status
    who = require(actor)
    HOUSE.check(house.status, target, who.party)
    house.status = target
    house.updated_at = uow.now
    if target is HouseStatus.LISTED:
        uow.emit(_listed_event(house), key=house.id)
    elif target is HouseStatus.UNLISTED:
        uow.emit(HouseUnlisted(house_id=house.id), key=house.id)
    else:
        uow.emit(HouseArchived(house_id=house.id), key=house.id)
    return _public(uow, house)


def add_photo(uow: UnitOfWork, actor: Actor | None, data: AddPhoto) -> PhotoRecord:
    """Attach a photo's metadata to a house."""
    house = managed_house(uow, actor, data.house_id, lock=True)
    count = len(uow.houses.photos(house.id))
    if count >= MAX_PHOTOS:
        raise RuleViolation("too_many_photos", f"a house may have at most {MAX_PHOTOS} photos")
    photo = HousePhoto(
        id=uuid.uuid4(), house_id=house.id, position=count, created_at=uow.now, **data.model_dump(exclude={"house_id"})
    )
    uow.houses.add_photo(photo)
    house.updated_at = uow.now
    uow.emit(HouseUpdated(house_id=house.id, changed=["photos"]), key=house.id)
    return PhotoRecord.model_validate(photo)


def remove_photo(uow: UnitOfWork, actor: Actor | None, data: RemovePhoto) -> None:
    """Detach a photo from a house."""
    house = managed_house(uow, actor, data.house_id, lock=True)
    photo = uow.houses.photo(data.photo_id)
    if photo is None or photo.house_id != house.id:
        raise NotFound("photo", data.photo_id)
    uow.houses.remove_photo(photo)
    house.updated_at = uow.now
    uow.emit(HouseUpdated(house_id=house.id, changed=["photos"]), key=house.id)


def managed_houses(
    uow: UnitOfWork, actor: Actor | None, status: HouseStatus | None = None, page: int = 1, page_size: int = 50
) -> Page[HouseSummary]:
    """The houses a landlord owns (every house, for an admin), in any status."""
    who = require(actor, Role.LANDLORD, Role.ADMIN)
    window = Window(page, page_size)
    where = {"landlord_id": None if who.is_admin else who.id, "status": status}
    return paged(uow.houses.listed(where, Order("created_at"), window), HouseSummary, window)


def search_houses(uow: UnitOfWork, query: HouseQuery) -> Page[HouseSummary]:
    """Listed houses matching the filters, sorted and paged, straight from the database."""
    window = Window(query.page, query.page_size)
    return paged(uow.houses.search(query, SORTS[query.sort], window), HouseSummary, window)
