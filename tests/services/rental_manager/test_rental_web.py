"""The web UI in process (against PostgreSQL): the session cookie, CSRF defences, who may open which page,
inline form errors, the search page, and the label and arrears look-ups behind the screens."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from rental_manager.bootstrap import Rental
from rental_manager.domain.model import BillStatus, Period, Role
from rental_manager.entrypoints import web
from rental_manager.entrypoints.api import create_api
from rental_manager.entrypoints.web.core import money
from rental_manager.entrypoints.web.session import CSRF_COOKIE, SESSION_COOKIE
from rental_manager.service import arrears, billing, directory, houses, rentals
from rental_manager.service.commands import PayBill
from rental_manager.service.errors import Forbidden
from rental_manager.service.unit import SYSTEM, UnitOfWork

from tests.support.rental import PASSWORD, Cast, World, build_world, house_data, person

pytestmark = pytest.mark.integration

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """A browser's view of the UI: its own cookie jar, forms posted with the page's CSRF token."""

    def __init__(self, app: FastAPI) -> None:
        self.client = TestClient(app, base_url="http://testserver", follow_redirects=False)

    def get(self, path: str, follow: bool = True) -> httpx.Response:
        """Open a page."""
        return self.client.get(path, follow_redirects=follow)

    def token(self, path: str = "/ui/login") -> str:
        """The CSRF token of the forms on `path`."""
        found = TOKEN.search(self.get(path).text)
        assert found is not None, f"no form on {path}"
        return found.group(1)

    def post(
        self, path: str, data: dict[str, str], *, from_page: str = "/ui/houses", follow: bool = True, **kw: Any
    ) -> httpx.Response:
        """Submit a form shown on `from_page`."""
        fields = {"csrf_token": self.token(from_page), **data}
        return self.client.post(path, data=fields, follow_redirects=follow, **kw)

    def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        """Use the login form."""
        return self.post("/ui/login", {"email": email, "password": password}, from_page="/ui/login")


@pytest.fixture
def app(rental: Rental) -> FastAPI:
    return create_api(rental)


@pytest.fixture
def world(rental: Rental, people: Cast) -> World:
    return build_world(rental, people)


@pytest.fixture
def browsers(app: FastAPI) -> Iterator[dict[str, Browser]]:
    made: dict[str, Browser] = {}

    class Factory(dict[str, Browser]):
        def __missing__(self, name: str) -> Browser:
            made[name] = Browser(app)
            return made[name]

    yield Factory()
    for browser in made.values():
        browser.client.close()


def flashes(page: httpx.Response) -> list[str]:
    return re.findall(r'data-flash="\w+">([^<]*)<', page.text)


def field_errors(page: httpx.Response) -> dict[str, str]:
    return dict(re.findall(r'data-error="(\w+)">([^<]*)<', page.text))


def test_login_keeps_the_api_token_in_an_httponly_cookie(
    browsers: dict[str, Browser], people: Cast, app: FastAPI
) -> None:
    tenant = browsers["tenant"]
    answer = tenant.post(
        "/ui/login", {"email": people.t1.email, "password": PASSWORD}, from_page="/ui/login", follow=False
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/houses"
    cookies = answer.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith(f"{SESSION_COOKIE}="))
    assert "HttpOnly" in session
    assert "samesite=lax" in session.lower()
    assert "Path=/" in session
    # The cookie holds the very token the JSON API accepts as a bearer token.
    token = session.split(";", 1)[0].split("=", 1)[1]
    me = TestClient(app).get("/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["email"] == people.t1.email
    home = tenant.get("/ui/houses")
    assert "Welcome back" in flashes(home)[0]
    assert 'data-testid="user-name"' in home.text

    out = tenant.post("/ui/logout", {}, follow=False)
    assert out.status_code == 303
    assert any(c.startswith(f'{SESSION_COOKIE}=""') for c in out.headers.get_list("set-cookie"))
    after = tenant.get("/ui/bills", follow=False)
    assert after.status_code == 303
    assert after.headers["location"].startswith("/ui/login?next=/ui/bills")


def test_logout_revokes_the_session_token_server_side(browsers: dict[str, Browser], people: Cast, app: FastAPI) -> None:
    tenant = browsers["tenant"]
    tenant.sign_in(people.t1.email)
    token = tenant.client.cookies[SESSION_COOKIE]
    api = TestClient(app)
    assert api.get("/users/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    tenant.post("/ui/logout", {})
    # A copy of the cookie kept from before (another tab, a stolen cookie) is refused, by the API and the UI.
    assert api.get("/users/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    thief = browsers["thief"]
    thief.client.cookies.set(SESSION_COOKIE, token)
    page = thief.get("/ui/bills", follow=False)
    assert (page.status_code, page.headers["location"]) == (303, "/ui/login?next=/ui/bills")
    assert tenant.sign_in(people.t1.email).status_code == 200
    assert 'data-testid="user-name"' in tenant.get("/ui/houses").text


def test_wrong_credentials_are_reported_on_the_form(browsers: dict[str, Browser], people: Cast) -> None:
    page = browsers["x"].post("/ui/login", {"email": people.t1.email, "password": "nope-nope"}, from_page="/ui/login")
    assert page.status_code == 401
    assert "wrong e-mail address or password" in field_errors(page)["form"]
    assert SESSION_COOKIE not in browsers["x"].client.cookies
    empty = browsers["x"].post("/ui/login", {"email": "", "password": ""}, from_page="/ui/login")
    assert empty.status_code == 422
    assert set(field_errors(empty)) >= {"email", "password"}


def test_sign_up_form_names_a_common_password(browsers: dict[str, Browser]) -> None:
    email = f"weak-{uuid.uuid4().hex[:8]}@example.com"
    fields = {"email": email, "full_name": "Weak", "role": "tenant", "password": "password123"}
    page = browsers["x"].post("/ui/register", {**fields, "password_again": "password123"}, from_page="/ui/register")
    assert page.status_code == 422
    assert "most common passwords" in field_errors(page)["password"]
    assert SESSION_COOKIE not in browsers["x"].client.cookies


def test_the_login_form_is_throttled_after_repeated_failures(browsers: dict[str, Browser], people: Cast) -> None:
    browser = browsers["x"]
    for _ in range(5):
        assert browser.sign_in(people.t2.email, "wrong password").status_code == 401
    page = browser.sign_in(people.t2.email)
    assert page.status_code == 429
    assert 1 <= int(page.headers["retry-after"]) <= 300
    assert "too many failed sign-ins" in field_errors(page)["form"]
    assert SESSION_COOKIE not in browser.client.cookies


def test_forms_without_a_valid_csrf_token_or_from_another_site_are_refused(
    browsers: dict[str, Browser], rental: Rental, people: Cast
) -> None:
    house = rental.service.run(houses.create_house, people.l1.actor, house_data(city=f"Csrf-{uuid.uuid4().hex[:6]}"))
    tenant = browsers["tenant"]
    tenant.sign_in(people.t1.email)
    start = rental.service.today() + timedelta(days=30)
    body = {"start_date": start.isoformat(), "end_date": (start + timedelta(days=60)).isoformat()}
    path = f"/ui/houses/{house.id}/applications"

    missing = tenant.client.post(path, data=body)
    assert missing.status_code == 403
    assert "security token is missing" in missing.text
    forged = tenant.client.post(path, data={**body, "csrf_token": "0" * 64})
    assert forged.status_code == 403
    # A token from another browser (another nonce and session) does not fit this one's cookies.
    stranger = browsers["stranger"]
    stranger.sign_in(people.t2.email)
    theirs = stranger.token("/ui/houses")
    assert tenant.client.post(path, data={**body, "csrf_token": theirs}).status_code == 403
    # The right token, but the browser says the form came from another site.
    cross = tenant.client.post(
        path, data={**body, "csrf_token": tenant.token()}, headers={"Origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    assert "another site" in cross.text
    mine = rental.service.run(rentals.list_applications, people.t1.actor, None, house.id)
    assert mine.total == 0

    done = tenant.post(path, body, from_page=f"/ui/houses/{house.id}", headers={"Origin": "http://testserver"})
    assert done.status_code == 200
    assert rental.service.run(rentals.list_applications, people.t1.actor, None, house.id).total == 1


def test_csrf_token_is_bound_to_the_session(browsers: dict[str, Browser], people: Cast) -> None:
    browser = browsers["b"]
    before = browser.token("/ui/login")
    nonce = browser.client.cookies[CSRF_COOKIE]
    browser.sign_in(people.t1.email)
    assert browser.client.cookies[CSRF_COOKIE] == nonce
    assert browser.token("/ui/houses") != before
    stale = browser.client.post("/ui/logout", data={"csrf_token": before})
    assert stale.status_code == 403


@pytest.mark.parametrize("path", ["/ui/my-houses", "/ui/my-houses/new", "/ui/dashboard"])
def test_tenants_cannot_open_landlord_pages(browsers: dict[str, Browser], people: Cast, path: str) -> None:
    tenant = browsers["tenant"]
    tenant.sign_in(people.t1.email)
    page = tenant.get(path)
    assert page.status_code == 403
    assert 'data-error-status="403"' in page.text
    anonymous = browsers["anon"].get(path, follow=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == f"/ui/login?next={path}"


def test_landlords_see_only_their_own_houses_and_queues(browsers: dict[str, Browser], world: World) -> None:
    other = browsers["l2"]
    other.sign_in(world.l2.email)
    assert other.get(f"/ui/my-houses/{world.house}/edit").status_code == 403
    assert other.get(f"/ui/my-houses/{world.draft}/edit").status_code == 404
    refused = other.post(f"/ui/my-houses/{world.house}/status", {"status": "unlisted"}, from_page="/ui/my-houses")
    assert refused.status_code == 403
    queue = other.get("/ui/maintenance").text
    assert str(world.request) not in queue
    assert str(world.pending) not in other.get("/ui/applications").text
    owner = browsers["l1"]
    owner.sign_in(world.l1.email)
    assert f'data-request="{world.request}"' in owner.get("/ui/maintenance").text
    assert f'data-application="{world.pending}"' in owner.get("/ui/applications").text
    assert owner.get(f"/ui/my-houses/{world.house}/edit").status_code == 200


# A valid new-house form, as a landlord types it (the rent with a thousands separator).
HOUSE_FORM = {
    "title": "Loft",
    "address": "1 Rue",
    "city": "Lyon",
    "district": "Centre",
    "rooms": "3",
    "area_m2": "72.5",
    "monthly_rent": "1,250.50",
}


def test_bad_input_comes_back_inline_and_changes_nothing(
    browsers: dict[str, Browser], rental: Rental, people: Cast
) -> None:
    landlord = browsers["l1"]
    landlord.sign_in(people.l1.email)
    before = rental.service.run(houses.managed_houses, people.l1.actor).total
    page = landlord.post(
        "/ui/my-houses/new",
        {**HOUSE_FORM, "title": "", "rooms": "-1", "area_m2": "40", "monthly_rent": "12.345"},
        from_page="/ui/my-houses/new",
    )
    assert page.status_code == 422
    errors = field_errors(page)
    assert set(errors) >= {"title", "rooms", "monthly_rent"}
    assert "two decimal places" in errors["monthly_rent"]
    assert 'value="1 Rue"' in page.text  # what was typed stays in the form
    assert rental.service.run(houses.managed_houses, people.l1.actor).total == before

    created = landlord.post(
        "/ui/my-houses/new",
        {**HOUSE_FORM, "deposit": "2500", "facilities": "wifi, lift, wifi", "list_now": "on"},
        from_page="/ui/my-houses/new",
    )
    assert created.status_code == 200
    assert "is listed" in flashes(created)[0]
    newest = rental.service.run(houses.managed_houses, people.l1.actor).items[0]
    assert (newest.title, newest.monthly_rent_cents, newest.deposit_cents) == ("Loft", 125_050, 250_000)
    assert newest.facilities == ["lift", "wifi"]

    tenant = browsers["t1"]
    tenant.sign_in(people.t1.email)
    today = rental.service.today()
    backwards = tenant.post(
        f"/ui/houses/{newest.id}/applications",
        {"start_date": (today + timedelta(days=10)).isoformat(), "end_date": today.isoformat()},
        from_page=f"/ui/houses/{newest.id}",
    )
    assert backwards.status_code == 422
    assert "before start_date" in field_errors(backwards)["end_date"]
    past = tenant.post(
        f"/ui/houses/{newest.id}/viewings", {"scheduled_at": "2020-01-01T10:00"}, from_page=f"/ui/houses/{newest.id}"
    )
    assert past.status_code == 422
    assert "future" in field_errors(past)["scheduled_at"]


def test_payments_through_the_bills_page(browsers: dict[str, Browser], rental: Rental, world: World) -> None:
    tenant = browsers["t1"]
    tenant.sign_in(world.t1.email)
    bill = rental.service.run(billing.get_bill, world.t1.actor, world.bill)
    page = tenant.get("/ui/bills")
    assert f'data-bill="{world.bill}"' in page.text
    too_much = tenant.post(
        f"/ui/bills/{world.bill}/pay", {"amount": "9999999", "method": "card"}, from_page="/ui/bills"
    )
    assert too_much.status_code == 409
    assert "amount" in field_errors(too_much)
    junk = tenant.post(f"/ui/bills/{world.bill}/pay", {"amount": "ten", "method": "card"}, from_page="/ui/bills")
    assert junk.status_code == 422
    part = tenant.post(
        f"/ui/bills/{world.bill}/pay", {"amount": "100.00", "method": "card", "reference": "r1"}, from_page="/ui/bills"
    )
    assert "Still owed" in flashes(part)[0]
    again = tenant.post(
        f"/ui/bills/{world.bill}/pay", {"amount": "100.00", "method": "card", "reference": "r1"}, from_page="/ui/bills"
    )
    assert again.status_code == 200  # the same form sent twice records one payment
    after = rental.service.run(billing.get_bill, world.t1.actor, world.bill)
    assert after.paid_cents == bill.paid_cents + 10_000
    assert after.status is BillStatus.PARTIALLY_PAID


def test_search_page_filters_sorts_and_reports_bad_filters(
    browsers: dict[str, Browser], rental: Rental, people: Cast
) -> None:
    city = f"Webville-{uuid.uuid4().hex[:6]}"
    for rent in (150_000, 90_000, 120_000, 60_000):
        rental.service.run(houses.create_house, people.l1.actor, house_data(city=city, monthly_rent_cents=rent))
    visitor = browsers["anon"]
    page = visitor.get(f"/ui/houses?city={city.upper()}&min_rent=800&sort=rent_asc")
    assert page.status_code == 200
    assert re.search(r'data-testid="result-count">3<', page.text)
    prices = re.findall(r'class="price-tag">€([\d,.]+)', page.text)
    assert prices == ["900.00", "1,200.00", "1,500.00"]
    bad = visitor.get(f"/ui/houses?city={city}&min_rent=abc&max_rooms=1&min_rooms=3")
    assert bad.status_code == 422
    assert set(field_errors(bad)) >= {"min_rent", "max_rooms"}


def test_dashboard_draws_the_charts_and_the_arrears(browsers: dict[str, Browser], rental: Rental, world: World) -> None:
    svc = rental.service
    late = svc.today() + timedelta(days=45)
    overdue_ids = svc.run(billing.bills_to_check, late)
    svc.run(billing.mark_overdue, overdue_ids, late)
    owed = svc.run(arrears.arrears, world.l1.actor)
    assert sum(b.bills for b in owed.buckets) >= 1
    assert owed.houses[0].house_id == world.house
    assert svc.run(arrears.arrears, world.l2.actor).houses == []
    with pytest.raises(Forbidden):
        svc.run(arrears.arrears, world.t1.actor)

    landlord = browsers["l1"]
    landlord.sign_in(world.l1.email)
    page = landlord.get("/ui/dashboard")
    assert page.status_code == 200
    for chart in ("occupancy", "income", "arrears"):
        block = page.text.split(f'data-chart="{chart}"', 1)[1]
        assert re.match(r'(?s).*?<svg role="img"[^>]*viewBox="[^"]+"', block), chart
    assert 'data-kpi="overdue">€0.00' not in page.text

    admin = browsers["admin"]
    admin.sign_in(world.admin.email)
    ran = admin.post("/ui/admin/billing", {}, from_page="/ui/dashboard")
    assert "Billing run for" in flashes(ran)[0]
    tenant = browsers["t1"]
    tenant.sign_in(world.t1.email)
    assert tenant.post("/ui/admin/billing", {}, from_page="/ui/bills").status_code == 403


def test_labels_name_only_the_callers_dealings(rental: Rental, world: World) -> None:
    svc = rental.service
    stranger = person(rental, Role.TENANT)
    assert svc.run(directory.house_labels, world.t1.actor, {world.house, world.draft}).keys() == {world.house}
    assert svc.run(directory.house_labels, world.l1.actor, {world.house, world.draft}).keys() == {
        world.house,
        world.draft,
    }
    assert svc.run(directory.people, world.l1.actor, {world.t1.actor.id}).keys() == {world.t1.actor.id}
    assert svc.run(directory.people, world.l2.actor, {world.t1.actor.id}) == {}
    assert svc.run(directory.people, stranger.actor, {world.t1.actor.id, world.l1.actor.id}) == {}
    assert svc.run(directory.people, world.t1.actor, {world.l1.actor.id}).keys() == {world.l1.actor.id}


def test_web_pages_stay_out_of_the_api_document(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    assert not [p for p in paths if p.startswith("/ui") or p == "/"]
    client = TestClient(app, follow_redirects=False)
    assert client.get("/").headers["location"] == "/ui/"
    assert client.get("/ui/static/app.css").status_code == 200
    target = client.post("/ui/login", data={})
    assert target.status_code == 403  # no token: refused before anything else


def test_every_answer_carries_the_security_headers(app: FastAPI) -> None:
    client = TestClient(app, follow_redirects=False)
    for path in ("/ui/login", "/ui/houses", "/ui/register", "/houses", "/houses/not-a-uuid", "/ui/static/app.css"):
        answer = client.get(path)
        assert answer.status_code < 500, path
        policy = answer.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy, path
        assert "script-src" not in policy, path  # no script may run on any page
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers["referrer-policy"] == "strict-origin-when-cross-origin", path
        assert answer.headers["x-frame-options"] == "DENY", path
    docs = client.get("/docs").headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net" in docs and "frame-ancestors 'none'" in docs


def test_the_pages_need_no_script_the_policy_forbids() -> None:
    templates = Path(web.__file__).parent / "templates"
    for page in templates.glob("*.html"):
        html = page.read_text()
        assert not re.search(r"<script|\son[a-z]+\s*=|javascript:", html, re.IGNORECASE), page.name


def test_login_redirects_only_to_local_pages(browsers: dict[str, Browser], people: Cast) -> None:
    browser = browsers["b"]
    for evil in ("https://evil.example/ui/x", "//evil.example/ui/", "/api-elsewhere"):
        answer = browser.post(
            "/ui/login",
            {"email": people.t1.email, "password": PASSWORD, "next": evil},
            from_page="/ui/login",
            follow=False,
        )
        assert answer.headers["location"] == "/ui/houses", evil
        browser.client.cookies.clear()


def _issue_many(uow: UnitOfWork, lease_id: uuid.UUID, count: int) -> int:
    """Issue `count` small one-day rent bills on a lease; their total."""
    lease = uow.leases.get(SYSTEM, lease_id)
    assert lease is not None
    for i in range(count):
        start = date(2001, 1, 1) + timedelta(days=i)
        billing.issue_bill(uow, lease, "rent", Period(start, start), start, 100 + i)
    return sum(100 + i for i in range(count))


OWING = (BillStatus.ISSUED, BillStatus.PARTIALLY_PAID, BillStatus.OVERDUE)


def test_owed_per_lease_counts_every_open_bill_past_a_hundred(
    browsers: dict[str, Browser], rental: Rental, world: World
) -> None:
    svc, t1 = rental.service, world.t1.actor
    before = sum(b.outstanding_cents for b in svc.run(billing.list_bills, t1, None, world.lease, 1, 100).items)
    added = svc.run(_issue_many, world.lease, 130)
    assert svc.run(billing.list_bills, t1, None, world.lease, 1, 100).total > 130
    owed = before + added
    assert svc.run(billing.owed_by_lease, t1, [world.lease]) == {world.lease: owed}
    assert svc.run(billing.owed_by_lease, world.t2.actor, [world.lease]) == {}
    listed = svc.run(billing.list_bills, t1, None, world.lease, 1, 500).items
    owing = {b.id for b in listed if b.status in OWING and b.outstanding_cents > 0}
    assert len(owing) > 130
    assert svc.run(billing.payable_bills, t1, [b.id for b in listed]) == owing
    tenant = browsers["t1"]
    tenant.sign_in(world.t1.email)
    row = re.search(rf'data-lease="{world.lease}">(.*?)</tr>', tenant.get("/ui/leases").text, re.S)
    assert row is not None
    assert money(owed) in row.group(1)


def test_payable_bills_are_the_domains_call(rental: Rental, world: World) -> None:
    svc, t1 = rental.service, world.t1.actor
    bill = svc.run(billing.get_bill, t1, world.bill)
    assert svc.run(billing.payable_bills, t1, [world.bill]) == {world.bill}
    assert svc.run(billing.payable_bills, world.t2.actor, [world.bill]) == set()
    svc.run(billing.record_payment, t1, PayBill(bill_id=world.bill, amount_cents=bill.outstanding_cents))
    assert svc.run(billing.payable_bills, t1, [world.bill]) == set()
