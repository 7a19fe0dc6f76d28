"""The list, search, statistics and arrears handlers on the in-memory unit of work: the queries the service asks
of its repositories (who sees which rows, in which order, which page), with no database. The same handlers on
PostgreSQL are covered by test_rental_api and test_rental_web."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from argon2 import PasswordHasher
from rental_manager.domain.entities import Bill, Payment
from rental_manager.domain.model import BillStatus, HouseStatus, Role
from rental_manager.service import arrears, billing, directory, houses, stats, users
from rental_manager.service.errors import Forbidden, Unauthorized
from rental_manager.service.schemas import HouseQuery
from rental_manager.service.unit import Actor

from tests.services.rental_manager.fakes import NOW, TODAY, LetHouse, a_house, a_lease


@pytest.fixture
def place() -> LetHouse:
    return LetHouse()


def _rent(place: LetHouse, start: date, amount: int, status: BillStatus = BillStatus.ISSUED) -> Bill:
    bill = Bill(
        lease_id=place.lease.id,
        house_id=place.house.id,
        tenant_id=place.tenant.id,
        kind="rent",
        period_start=start,
        period_end=start,
        due_date=start,
        amount_cents=amount,
        status=status,
    )
    place.store.bills.add(bill)
    return bill


def test_bills_are_listed_latest_due_first_a_page_at_a_time_to_those_who_may_see_them(place: LetHouse) -> None:
    made = [_rent(place, TODAY + timedelta(days=200 - i), 100 + i) for i in range(120)]
    first = place.svc.run(billing.list_bills, place.as_tenant, page=1, page_size=50)
    third = place.svc.run(billing.list_bills, place.as_landlord, page=3, page_size=50)
    # 120 rent bills and the deposit bill, due before all of them.
    assert (first.total, len(first.items), len(third.items)) == (121, 50, 21)
    assert [b.id for b in first.items] == [b.id for b in made[:50]]
    assert third.items[-1].kind == "deposit"
    only_rent = place.svc.run(billing.list_bills, place.as_tenant, lease_id=place.lease.id, status=BillStatus.ISSUED)
    assert only_rent.total == 121
    stranger = Actor(uuid.uuid4(), Role.TENANT)
    assert place.svc.run(billing.list_bills, stranger).total == 0


def test_the_ledger_lists_payments_newest_first_for_their_bill(place: LetHouse) -> None:
    for i, cents in enumerate((100, 200, 300)):
        payment = Payment(
            bill_id=place.bill.id,
            lease_id=place.lease.id,
            house_id=place.house.id,
            tenant_id=place.tenant.id,
            amount_cents=cents,
            method="card",
            recorded_by=place.tenant.id,
            paid_at=NOW - timedelta(days=i),
        )
        place.store.bills.add_payment(payment)
    ledger = place.svc.run(billing.list_payments, place.as_landlord, place.bill.id)
    assert [p.amount_cents for p in ledger.items] == [100, 200, 300]
    assert place.svc.run(billing.list_payments, place.as_tenant, uuid.uuid4()).total == 0


def test_search_filters_sorts_and_pages_listed_houses_only(place: LetHouse) -> None:
    rows = place.store.houses.rows
    for rent, city, status in ((50_000, "lyon", HouseStatus.LISTED), (70_000, "Paris", HouseStatus.LISTED)):
        house = a_house(place.landlord.id, monthly_rent_cents=rent, city=city, status=status)
        rows[house.id] = house
    hidden = a_house(place.landlord.id, monthly_rent_cents=60_000, status=HouseStatus.UNLISTED)
    rows[hidden.id] = hidden

    def rents(**asked: object) -> list[int]:
        page = place.svc.run(houses.search_houses, HouseQuery.model_validate(asked))
        return [h.monthly_rent_cents for h in page.items]

    assert rents(sort="rent_asc") == [50_000, 70_000, 95_000]
    assert rents(city=" LYON ", sort="rent_desc") == [95_000, 50_000]
    assert rents(min_rent_cents=60_000, max_rent_cents=90_000) == [70_000]
    assert rents(sort="rent_asc", page=2, page_size=2) == [95_000]


def test_a_landlord_manages_their_own_houses_an_admin_all(place: LetHouse) -> None:
    other = a_house(uuid.uuid4(), status=HouseStatus.DRAFT)
    place.store.houses.rows[other.id] = other
    mine = place.svc.run(houses.managed_houses, place.as_landlord)
    every = place.svc.run(houses.managed_houses, Actor(uuid.uuid4(), Role.ADMIN), status=HouseStatus.DRAFT)
    assert ([h.id for h in mine.items], [h.id for h in every.items]) == ([place.house.id], [other.id])
    with pytest.raises(Forbidden):
        place.svc.run(houses.managed_houses, place.as_tenant)


def test_statistics_and_arrears_count_the_overdue_bills_of_the_landlords_houses(place: LetHouse) -> None:
    late = _rent(place, TODAY - timedelta(days=40), 95_000, BillStatus.OVERDUE)
    late.late_fee_cents, late.paid_cents = 2_500, 10_000
    _rent(place, TODAY - timedelta(days=5), 95_000, BillStatus.OVERDUE)
    elsewhere = a_house(uuid.uuid4())
    place.store.houses.rows[elsewhere.id] = elsewhere
    figures = place.svc.run(stats.statistics, place.as_landlord, 2)
    assert (figures.houses, figures.occupied_today, figures.overdue_bills) == (1, 1, 2)
    assert figures.overdue_cents == 95_000 + 2_500 - 10_000 + 95_000
    # Today is 1 March 2026; the lease runs from 30 January to 31 March, so both months of the window are let
    # throughout, and only February's bill (24 February) falls in it.
    assert [(m.month, m.occupancy_rate, m.billed_cents) for m in figures.months] == [
        ("2026-02", 1.0, 95_000),
        ("2026-03", 1.0, 0),
    ]
    owed = place.svc.run(arrears.arrears, place.as_landlord)
    assert {b.label: b.bills for b in owed.buckets} == {
        "0-30 days": 1,
        "31-60 days": 1,
        "61-90 days": 0,
        "over 90 days": 0,
    }
    assert [(h.house_id, h.cents) for h in owed.houses] == [(place.house.id, figures.overdue_cents)]
    admin = Actor(uuid.uuid4(), Role.ADMIN)
    assert place.svc.run(stats.statistics, admin, 2).houses == 2
    assert place.svc.run(stats.statistics, admin, 2, elsewhere.landlord_id).overdue_bills == 0


def test_labels_name_only_the_callers_dealings(place: LetHouse) -> None:
    draft = a_house(uuid.uuid4(), title="Hidden", status=HouseStatus.DRAFT)
    place.store.houses.rows[draft.id] = draft
    stranger = Actor(uuid.uuid4(), Role.TENANT)
    asked = [place.house.id, draft.id]
    assert set(place.svc.run(directory.house_labels, stranger, asked)) == {place.house.id}
    people = [place.landlord.id, place.tenant.id]
    assert set(place.svc.run(directory.people, place.as_tenant, people)) == {place.landlord.id, place.tenant.id}
    assert set(place.svc.run(directory.people, stranger, people)) == set()
    other_lease = a_lease(draft, stranger.id, TODAY, TODAY + timedelta(days=10))
    place.store.leases.add(other_lease)
    assert set(place.svc.run(directory.house_labels, stranger, asked)) == {place.house.id, draft.id}


def test_signing_out_revokes_the_tokens_issued_before(place: LetHouse) -> None:
    creds = users.Credentials(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1), "s" * 32, 600)
    subject = creds.subject(creds.issue(place.tenant))
    assert place.svc.run(users.actor_for, subject) == place.as_tenant
    place.svc.run(users.sign_out, place.as_tenant)
    assert place.tenant.token_version == 1
    with pytest.raises(Unauthorized):
        place.svc.run(users.actor_for, subject)
    listed = place.svc.run(users.list_users, Actor(uuid.uuid4(), Role.ADMIN), Role.TENANT)
    assert [u.id for u in listed.items] == [place.tenant.id]
