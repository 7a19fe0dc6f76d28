"""Real journeys through the web UI in headless Chromium, against `rental-manager all` on real PostgreSQL,
Redis and Kafka: a landlord lists a house, a tenant finds it, books a viewing and applies, the landlord
approves, the tenant pays the deposit in two parts and reports a repair the landlord resolves, an admin reads
the dashboard; and a tenant is kept out of the landlord's pages."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.support.web import ADMIN_PASSWORD, Browsers, RentalServer

pytestmark = pytest.mark.integration

PASSWORD = "a long password"


def register(page: Page, role: str, name: str, email: str) -> None:
    """Sign up through the registration form."""
    page.goto("/ui/register")
    page.check(f"input[name=role][value={role}]")
    page.fill("#f-full_name", name)
    page.fill("#f-email", email)
    page.fill("#f-password", PASSWORD)
    page.fill("#f-password_again", PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_test_id("user-name")).to_have_text(name)


def sign_in(page: Page, email: str, password: str) -> None:
    """Sign in through the login form."""
    page.goto("/ui/login")
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    page.get_by_role("button", name="Sign in").click()


def flash(page: Page, text: str) -> None:
    """The page shows a flash message containing `text`."""
    expect(page.locator("[data-flash]").filter(has_text=text)).to_be_visible()


def go(page: Page, section: str) -> None:
    """Follow a link of the main navigation."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=section).click()


def status_of(row: Locator) -> Locator:
    """The status badge of a table row (the last one, the row's own state)."""
    return row.locator("[data-status]").last


def found_after_reloads(page: Page, locator: Locator, timeout_s: float = 30) -> None:
    """Reload until `locator` shows (search results are cached until the rental events invalidate them)."""
    deadline = time.monotonic() + timeout_s
    while locator.count() == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
        page.reload()
    expect(locator).to_be_visible()


def _landlord_lists_a_house(landlord: Page, uid: str, city: str, title: str) -> None:
    """A landlord signs up, sees the form refuse an empty house, then lists one."""
    register(landlord, "landlord", "Lena Landlord", f"lena-{uid}@example.com")
    expect(landlord).to_have_url(re.compile(r"/ui/dashboard$"))
    go(landlord, "My houses")
    landlord.get_by_test_id("new-house").click()
    landlord.get_by_role("button", name="Add house").click()
    expect(landlord.locator("[data-error=title]")).to_be_visible()  # inline errors, nothing created
    for field, value in {
        "title": title,
        "address": "8 Quai Saint-Vincent",
        "city": city,
        "district": "Croix-Rousse",
        "rooms": "3",
        "area_m2": "68",
        "monthly_rent": "950",
        "deposit": "1000",
        "facilities": "wifi, balcony",
    }.items():
        landlord.fill(f"#f-{field}", value)
    landlord.get_by_role("button", name="Add house").click()
    flash(landlord, "is listed")
    expect(status_of(landlord.locator("tr[data-house]", has_text=title))).to_have_text("Listed")


def _tenant_finds_it_and_applies(tenant: Page, uid: str, city: str, title: str) -> None:
    """A tenant signs up, finds the house by search, books a viewing, saves it and applies."""
    register(tenant, "tenant", "Theo Tenant", f"theo-{uid}@example.com")
    expect(tenant).to_have_url(re.compile(r"/ui/houses$"))
    tenant.fill("#f-city", city)
    tenant.fill("#f-max_rent", "1000")
    tenant.select_option("#f-sort", "rent_asc")
    tenant.get_by_role("button", name="Search").click()
    card = tenant.locator("article.house-card", has_text=title)
    found_after_reloads(tenant, card)
    expect(card).to_contain_text("€950.00")
    card.get_by_role("link", name=title).click()
    expect(tenant.get_by_test_id("house-title")).to_have_text(title)

    tenant.locator("#book-viewing").get_by_role("button", name="Request viewing").click()
    flash(tenant, "Viewing requested")
    tenant.get_by_test_id("favourite").click()
    flash(tenant, "Saved")
    tenant.locator("#apply").get_by_role("button", name="Send application").click()
    flash(tenant, "Application sent")
    expect(status_of(tenant.locator("tr[data-application]", has_text=title))).to_have_text("Pending")


def _landlord_confirms_and_approves(landlord: Page, title: str) -> None:
    """The landlord confirms the viewing and approves the application: the lease is signed."""
    go(landlord, "Viewings")
    visit = landlord.locator("tr[data-viewing]", has_text=title)
    visit.get_by_role("button", name="Confirm").click()
    expect(status_of(landlord.locator("tr[data-viewing]", has_text=title))).to_have_text("Confirmed")
    go(landlord, "Applications")
    landlord.locator("tr[data-application]", has_text=title).get_by_role("button", name="Approve").click()
    flash(landlord, "the lease is signed")
    expect(status_of(landlord.locator("tr[data-application]", has_text=title))).to_have_text("Approved")


def _tenant_pays_the_deposit_in_two_parts(tenant: Page, title: str) -> None:
    """The tenant sees the active lease and pays its deposit bill in two payments."""
    go(tenant, "Leases")
    lease = tenant.locator("tr[data-lease]", has_text=title)
    expect(status_of(lease)).to_have_text("Active")
    expect(lease).to_contain_text("Lena Landlord")
    go(tenant, "Bills")
    bill = tenant.locator("tr[data-bill]", has_text=title)
    expect(bill.get_by_test_id("outstanding")).to_have_text("€1,000.00")
    bill.locator("input[name=amount]").fill("400")
    bill.get_by_role("button", name="Pay").click()
    flash(tenant, "Still owed on this bill: €600.00")
    bill = tenant.locator("tr[data-bill]", has_text=title)
    expect(status_of(bill)).to_have_text("Partially paid")
    expect(bill.locator("input[name=amount]")).to_have_value("600.00")
    bill.get_by_role("button", name="Pay").click()
    flash(tenant, "This bill is settled")
    bill = tenant.locator("tr[data-bill]", has_text=title)
    expect(status_of(bill)).to_have_text("Paid")
    expect(bill.get_by_test_id("paid")).to_have_text("€1,000.00")
    expect(tenant.locator("tr[data-payment]")).to_have_count(2)


def _a_repair_from_report_to_close(tenant: Page, landlord: Page, uid: str) -> None:
    """The tenant reports a repair, the landlord takes it to resolved, the tenant closes it."""
    go(tenant, "Repairs")
    form = tenant.locator("#report-repair")
    form.get_by_role("button", name="Send request").click()
    expect(form.locator("[data-error=title]")).to_be_visible()
    form.locator("#f-title").fill(f"Leaking tap {uid}")
    form.locator("#f-priority").select_option("high")
    form.get_by_role("button", name="Send request").click()
    flash(tenant, "Repair request sent")
    expect(status_of(tenant.locator("tr[data-request]", has_text=uid))).to_have_text("Open")

    go(landlord, "Maintenance")
    for step, state in (("Acknowledge", "Acknowledged"), ("Start work", "In progress"), ("Resolve", "Resolved")):
        request = landlord.locator("tr[data-request]", has_text=uid)
        if step == "Resolve":
            request.locator("input[name=note]").fill("Washer replaced")
        request.get_by_role("button", name=step).click()
        expect(status_of(landlord.locator("tr[data-request]", has_text=uid))).to_have_text(state)
    expect(landlord.locator("tr[data-request]", has_text=uid)).to_contain_text("Washer replaced")

    tenant.reload()
    request = tenant.locator("tr[data-request]", has_text=uid)
    expect(status_of(request)).to_have_text("Resolved")
    request.get_by_role("button", name="Close").click()
    expect(status_of(tenant.locator("tr[data-request]", has_text=uid))).to_have_text("Closed")


def _admin_reads_the_dashboard(admin: Page, rental_server: RentalServer, title: str) -> None:
    """An admin sees the charts drawn, income received, runs billing and sees the house's landlord."""
    sign_in(admin, rental_server.admin_email, ADMIN_PASSWORD)
    expect(admin).to_have_url(re.compile(r"/ui/dashboard$"))
    for chart in ("occupancy", "income", "arrears"):
        drawn = admin.locator(f"[data-chart={chart}] svg.chart")
        expect(drawn).to_be_visible()
        box = drawn.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 80, chart
    expect(admin.locator("[data-kpi=income]")).not_to_have_text("€0.00")
    admin.get_by_test_id("run-billing").click()
    flash(admin, "Billing run for")
    go(admin, "Houses")
    expect(admin.locator("tr[data-house]", has_text=title)).to_contain_text("Lena Landlord")


def test_from_listing_to_lease_bills_and_repairs(browsers: Browsers, rental_server: RentalServer) -> None:
    uid = uuid.uuid4().hex[:8]
    city, title = f"Lyon {uid}", f"Sunny loft {uid}"
    landlord = browsers.page("landlord")
    _landlord_lists_a_house(landlord, uid, city, title)
    tenant = browsers.page("tenant")
    _tenant_finds_it_and_applies(tenant, uid, city, title)
    _landlord_confirms_and_approves(landlord, title)
    _tenant_pays_the_deposit_in_two_parts(tenant, title)
    _a_repair_from_report_to_close(tenant, landlord, uid)
    _admin_reads_the_dashboard(browsers.page("admin"), rental_server, title)


def test_a_tenant_cannot_open_the_landlord_pages(browsers: Browsers, rental_server: RentalServer) -> None:
    uid = uuid.uuid4().hex[:8]
    tenant = browsers.page("tenant")
    register(tenant, "tenant", "Tess Tenant", f"tess-{uid}@example.com")
    session = next(c for c in tenant.context.cookies() if c["name"] == "rm_session")
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    expect(tenant.locator("nav [data-nav=my-houses]")).to_have_count(0)
    for path in ("/ui/my-houses", "/ui/my-houses/new", "/ui/dashboard"):
        answer = tenant.goto(path)
        assert answer is not None and answer.status == 403, path
        expect(tenant.get_by_role("heading", name="Not allowed")).to_be_visible()
    # A form posted from a page without the session-bound token is refused, whatever the browser sends.
    tenant.goto("/ui/houses")
    tenant.evaluate(
        """() => { const f = document.createElement('form'); f.method = 'post'; f.action = '/ui/admin/billing';
                   document.body.appendChild(f); f.submit(); }"""
    )
    expect(tenant.get_by_role("heading", name="Request refused")).to_be_visible()

    visitor = browsers.page("visitor")
    visitor.goto("/ui/bills")
    expect(visitor).to_have_url(re.compile(r"/ui/login\?next=/ui/bills$"))
    flash(visitor, "Please sign in")
    visitor.fill("#f-email", f"tess-{uid}@example.com")
    visitor.fill("#f-password", PASSWORD)
    visitor.get_by_role("button", name="Sign in").click()
    expect(visitor).to_have_url(re.compile(r"/ui/bills$"))
    expect(visitor.get_by_role("heading", name="Bills", exact=True)).to_be_visible()
