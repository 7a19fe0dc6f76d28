"""Announcements, favourites and reviews on the in-memory unit of work: the commands the API and the web UI
build, the read models they get back, and the events left in the outbox; no database."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from rental_manager.domain.model import HouseStatus, LeaseStatus, Role
from rental_manager.service import community
from rental_manager.service.commands import ForgetHouse, PublishAnnouncement, ReviewHouse, SaveHouse
from rental_manager.service.errors import Conflict, Forbidden, NotFound
from rental_manager.service.read_models import AnnouncementRecord, FavouriteRecord, ReviewRecord
from rental_manager.service.unit import Actor

from tests.services.rental_manager.fakes import NOW, TODAY, LetHouse, a_house, a_lease


@pytest.fixture
def town() -> LetHouse:
    return LetHouse()


def test_a_landlord_announces_to_a_house_of_theirs_and_only_admins_to_everyone(town: LetHouse) -> None:
    notice = PublishAnnouncement(title="Water off", body="Tuesday 9-12", house_id=town.house.id)
    record = town.svc.run(community.publish_announcement, town.as_landlord, notice)
    assert isinstance(record, AnnouncementRecord)
    assert (record.author_id, record.house_id, record.published_at) == (town.landlord.id, town.house.id, NOW)
    assert [n.title for n in town.store.announcements.rows] == ["Water off"]
    with pytest.raises(Forbidden):
        town.svc.run(community.publish_announcement, town.as_landlord, PublishAnnouncement(title="All", body="x"))
    admin = Actor(uuid.uuid4(), Role.ADMIN)
    to_all = town.svc.run(community.publish_announcement, admin, PublishAnnouncement(title="All", body="x"))
    assert to_all.house_id is None
    assert town.events() == [("AnnouncementPublished", str(town.house.id)), ("AnnouncementPublished", str(to_all.id))]


def test_a_landlord_cannot_announce_to_someone_elses_house(town: LetHouse) -> None:
    other = a_house(uuid.uuid4())
    town.store.houses.rows[other.id] = other
    with pytest.raises(Forbidden):
        town.svc.run(
            community.publish_announcement,
            town.as_landlord,
            PublishAnnouncement(title="Mine now", body="x", house_id=other.id),
        )
    assert (town.store.announcements.rows, town.store.outbox) == ([], [])


def test_saving_a_house_twice_saves_it_once_and_forgetting_it_is_announced(town: LetHouse) -> None:
    saved = town.svc.run(community.add_favourite, town.as_tenant, SaveHouse(house_id=town.house.id))
    again = town.svc.run(community.add_favourite, town.as_tenant, SaveHouse(house_id=town.house.id))
    assert isinstance(saved, FavouriteRecord)
    assert (saved.house.id, saved.house.title, again.created_at) == (town.house.id, "Loft", saved.created_at)
    assert list(town.store.favourites.rows) == [(town.tenant.id, town.house.id)]
    town.svc.run(community.remove_favourite, town.as_tenant, ForgetHouse(house_id=town.house.id))
    town.svc.run(community.remove_favourite, town.as_tenant, ForgetHouse(house_id=town.house.id))
    assert town.store.favourites.rows == {}
    key = str(town.house.id)
    assert town.events() == [("HouseFavourited", key), ("HouseUnfavourited", key)]


def test_a_draft_house_cannot_be_saved(town: LetHouse) -> None:
    town.house.status = HouseStatus.DRAFT
    with pytest.raises(NotFound):
        town.svc.run(community.add_favourite, town.as_tenant, SaveHouse(house_id=town.house.id))
    assert town.store.favourites.rows == {}


def test_a_tenant_reviews_the_house_of_their_latest_lease_once(town: LetHouse) -> None:
    earlier = a_lease(
        town.house, town.tenant.id, TODAY - timedelta(days=400), TODAY - timedelta(days=100), status=LeaseStatus.ENDED
    )
    town.store.leases.add(earlier)
    review = town.svc.run(
        community.post_review, town.as_tenant, ReviewHouse(house_id=town.house.id, rating=4, comment="Bright")
    )
    assert isinstance(review, ReviewRecord)
    assert (review.rating, review.comment, review.tenant_id) == (4, "Bright", town.tenant.id)
    [stored] = town.store.reviews.rows
    assert stored.lease_id == town.lease.id
    with pytest.raises(Conflict):
        town.svc.run(community.post_review, town.as_tenant, ReviewHouse(house_id=town.house.id, rating=1))
    assert town.events() == [("ReviewPosted", str(town.house.id))]


def test_only_a_tenant_of_the_house_reviews_it(town: LetHouse) -> None:
    stranger = Actor(uuid.uuid4(), Role.TENANT)
    with pytest.raises(Forbidden):
        town.svc.run(community.post_review, stranger, ReviewHouse(house_id=town.house.id, rating=5))
    with pytest.raises(NotFound):
        town.svc.run(community.post_review, stranger, ReviewHouse(house_id=uuid.uuid4(), rating=5))
    assert (town.store.reviews.rows, town.store.outbox) == ([], [])
