"""The authorization matrix: every role against every endpoint, on fresh data each time; no leaks.

Anonymous callers get 401 wherever sign-in is needed; a caller who may see a resource but not act on it
gets 403; a caller who may not know the resource exists gets 404, exactly as if it did not.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rental_manager.bootstrap import Rental
from rental_manager.service.errors import Forbidden, Unauthorized
from rental_manager.service.unit import SYSTEM

from tests.support.rental import PASSWORD, Cast, World, build_world

pytestmark = pytest.mark.integration

ROLES = ("anon", "t1", "t2", "l1", "l2", "admin")
Body = Callable[[World], Any]


@dataclass(frozen=True)
class Case:
    """One endpoint call and the status each role must get."""

    method: str
    path: str
    expect: dict[str, int]
    body: Body | None = None
    form: Body | None = None

    def route(self) -> str:
        """The route template this case exercises (for the coverage check)."""
        return self.path.split("?")[0]


def everyone(status: int) -> dict[str, int]:
    return dict.fromkeys(ROLES, status)


def signed_in(status: int, **others: int) -> dict[str, int]:
    return {"anon": 401, **dict.fromkeys(ROLES[1:], status), **others}


def future(days: int) -> str:
    return (date.today() + timedelta(days=days)).isoformat()


HOUSE = {
    "title": "Another flat",
    "address": "3 Quai",
    "city": "Lyon",
    "district": "Vaise",
    "area_m2": 40,
    "rooms": 1,
    "monthly_rent_cents": 70000,
}

CASES: list[Case] = [
    Case(
        "POST",
        "/auth/register",
        everyone(201),
        body=lambda w: {
            "email": f"new-{uuid.uuid4().hex[:8]}@example.com",
            "password": PASSWORD,
            "full_name": "New Person",
        },
    ),
    Case("POST", "/auth/token", everyone(200), form=lambda w: {"username": w.t1.email, "password": PASSWORD}),
    Case("POST", "/auth/logout", signed_in(204)),
    Case("GET", "/users/me", signed_in(200)),
    Case("GET", "/users", signed_in(403, admin=200)),
    Case(
        "POST",
        "/users",
        signed_in(403, admin=201),
        body=lambda w: {
            "email": f"adm-{uuid.uuid4().hex[:8]}@example.com",
            "password": PASSWORD,
            "full_name": "A",
            "role": "admin",
        },
    ),
    Case("GET", "/houses", everyone(200)),
    Case(
        "POST",
        "/houses",
        signed_in(403, l1=201, admin=201),
        body=lambda w: {**HOUSE, "landlord_id": str(w.l1.actor.id)},
    ),
    Case("GET", "/houses/managed", signed_in(403, l1=200, l2=200, admin=200)),
    Case("GET", "/houses/{house}", everyone(200)),
    Case("GET", "/houses/{draft}", {**everyone(404), "l1": 200, "admin": 200}),
    Case("PATCH", "/houses/{house}", signed_in(403, l1=200, admin=200), body=lambda w: {"rooms": 3}),
    Case("PATCH", "/houses/{draft}", signed_in(404, l1=200, admin=200), body=lambda w: {"rooms": 3}),
    Case("POST", "/houses/{draft}/list", signed_in(404, l1=200, admin=200)),
    Case("POST", "/houses/{house}/unlist", signed_in(403, l1=200, admin=200)),
    Case("POST", "/houses/{house}/archive", signed_in(403, l1=200, admin=200)),
    Case(
        "POST",
        "/houses/{house}/photos",
        signed_in(403, l1=201, admin=201),
        body=lambda w: {
            "url": "https://img.example.com/b.png",
            "content_type": "image/png",
            "width": 800,
            "height": 600,
            "size_bytes": 1000,
        },
    ),
    Case("DELETE", "/houses/{house}/photos/{photo}", signed_in(403, l1=204, admin=204)),
    Case("PUT", "/houses/{house}/favourite", signed_in(403, t1=200, t2=200)),
    Case("PUT", "/houses/{draft}/favourite", signed_in(403, t1=404, t2=404)),
    Case("DELETE", "/houses/{house}/favourite", signed_in(403, t1=204, t2=204)),
    Case("GET", "/favourites", signed_in(403, t1=200, t2=200)),
    Case("POST", "/houses/{house}/reviews", signed_in(403, t1=201), body=lambda w: {"rating": 4, "comment": "Quiet"}),
    Case("GET", "/houses/{house}/reviews", everyone(200)),
    Case("GET", "/houses/{draft}/reviews", {**everyone(404), "l1": 200, "admin": 200}),
    Case(
        "POST",
        "/houses/{house}/viewings",
        signed_in(403, t1=201, t2=201),
        body=lambda w: {"scheduled_at": f"{future(5)}T10:00:00+00:00"},
    ),
    Case(
        "POST",
        "/houses/{draft}/viewings",
        signed_in(403, t1=404, t2=404),
        body=lambda w: {"scheduled_at": f"{future(5)}T10:00:00+00:00"},
    ),
    Case("GET", "/viewings", signed_in(200)),
    Case(
        "POST",
        "/viewings/{viewing}/status",
        signed_in(404, t1=403, l1=200, admin=200),
        body=lambda w: {"status": "confirmed"},
    ),
    Case(
        "POST",
        "/houses/{house}/applications",
        signed_in(403, t1=201, t2=201),
        body=lambda w: {"start_date": future(800), "end_date": future(900)},
    ),
    Case(
        "POST",
        "/houses/{draft}/applications",
        signed_in(403, t1=404, t2=404),
        body=lambda w: {"start_date": future(800), "end_date": future(900)},
    ),
    Case("GET", "/applications", signed_in(200)),
    Case("GET", "/applications/{pending}", signed_in(404, t1=200, l1=200, admin=200)),
    Case("POST", "/applications/{pending}/approve", signed_in(404, t1=403, l1=200, admin=200)),
    Case("POST", "/applications/{pending}/reject", signed_in(404, t1=403, l1=200, admin=200)),
    Case("POST", "/applications/{pending}/withdraw", signed_in(404, t1=200, l1=403, admin=403)),
    Case("GET", "/leases", signed_in(200)),
    Case("GET", "/leases/{lease}", signed_in(404, t1=200, l1=200, admin=200)),
    Case(
        "POST",
        "/leases/{lease}/renew",
        signed_in(404, t1=403, l1=200, admin=200),
        body=lambda w: {"end_date": future(350)},
    ),
    Case(
        "POST",
        "/leases/{lease}/terminate",
        signed_in(404, t1=200, l1=200, admin=200),
        body=lambda w: {"end_date": future(30), "reason": "moving abroad"},
    ),
    Case("GET", "/bills", signed_in(200)),
    Case("GET", "/bills/{bill}", signed_in(404, t1=200, l1=200, admin=200)),
    Case(
        "POST",
        "/bills/{bill}/payments",
        signed_in(404, t1=201, l1=201, admin=201),
        body=lambda w: {"amount_cents": 100},
    ),
    Case("GET", "/payments", signed_in(200)),
    Case("GET", "/stats", signed_in(403, l1=200, l2=200, admin=200)),
    Case("POST", "/admin/billing/run", signed_in(403, admin=200), body=lambda w: {"as_of": date.today().isoformat()}),
    Case("POST", "/houses/{house}/maintenance", signed_in(403, t1=201), body=lambda w: {"title": "Broken heater"}),
    Case("GET", "/maintenance", signed_in(200)),
    Case("GET", "/maintenance/{request}", signed_in(404, t1=200, l1=200, admin=200)),
    Case(
        "POST",
        "/maintenance/{request}/status",
        signed_in(404, t1=403, l1=200, admin=200),
        body=lambda w: {"status": "acknowledged"},
    ),
    Case(
        "POST",
        "/announcements",
        signed_in(403, l1=201, admin=201),
        body=lambda w: {"title": "Water off", "body": "Tuesday 9-12", "house_id": str(w.house)},
    ),
    Case("GET", "/announcements", signed_in(200)),
    Case("GET", "/healthz", everyone(200)),
    Case("GET", "/readyz", everyone(200)),
    Case("GET", "/metrics", everyone(200)),
]

TEMPLATE = {
    "{house}": "{house_id}",
    "{draft}": "{house_id}",
    "{photo}": "{photo_id}",
    "{viewing}": "{viewing_id}",
    "{pending}": "{application_id}",
    "{lease}": "{lease_id}",
    "{bill}": "{bill_id}",
    "{request}": "{request_id}",
}


def _path(case: Case, world: World) -> str:
    path = case.path
    for name in ("house", "draft", "photo", "viewing", "pending", "lease", "bill", "request"):
        path = path.replace("{" + name + "}", str(getattr(world, name)))
    return path


def _template(path: str) -> str:
    for ours, theirs in TEMPLATE.items():
        path = path.replace(ours, theirs)
    return path


def test_the_matrix_covers_every_endpoint(client: TestClient) -> None:
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    routes = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    covered = {(c.method, _template(c.route())) for c in CASES}
    assert routes - covered == set(), "endpoints without authorization cases"
    assert covered - routes == set(), "cases for endpoints that do not exist"


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.method} {c.path}")
def test_every_role_gets_exactly_its_status(rental: Rental, client: TestClient, people: Cast, case: Case) -> None:
    failures = []
    refused = build_world(rental, people)  # refusals change nothing, so they share one world
    for role in ROLES:
        # Each success gets fresh data, so no role's success shapes another role's answer.
        world = refused if case.expect[role] >= 400 else build_world(rental, people)
        who = None if role == "anon" else getattr(world, role)
        headers = who.headers if who is not None else {}
        kwargs: dict[str, Any] = {"headers": headers}
        if case.body is not None:
            kwargs["json"] = case.body(world)
        if case.form is not None:
            kwargs["data"] = case.form(world)
        response = client.request(case.method, _path(case, world), **kwargs)
        if response.status_code != case.expect[role]:
            failures.append(f"{role}: {response.status_code} (want {case.expect[role]}) {response.text[:200]}")
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json"), response.text
        if response.status_code == 401:
            assert response.headers.get("www-authenticate") == "Bearer"
    assert not failures, "\n".join(failures)


def test_the_billing_run_refuses_anyone_but_admins_in_the_service(rental: Rental, people: Cast) -> None:
    today = date.today()
    for who in (people.t1, people.l1):
        with pytest.raises(Forbidden):
            rental.service.run_billing(who.actor, today)
    with pytest.raises(Unauthorized):
        rental.service.run_billing(None, today)
    assert rental.service.run_billing(people.admin.actor, today).as_of == today
    assert rental.service.run_billing(SYSTEM, today).as_of == today
