"""The web UI's pages: sign-in, house search and detail, and the tenant's, landlord's and admin's screens.

Each route reads its form or query, builds the service layer's request model, and calls the same handler
the JSON API calls; nothing here decides what is allowed. Buttons offered for a state change come from the
domain's state machines (`StateMachine.targets`), so the page never offers a move the service would refuse
on principle; the service still checks every one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from fastapi import APIRouter, Request, Response

from rental_manager.adapters.throttle import client_address
from rental_manager.domain.errors import InvalidValue, RuleViolation
from rental_manager.domain.model import (
    APPLICATION,
    HOUSE,
    MAINTENANCE,
    VIEWING,
    ApplicationStatus,
    BillStatus,
    HouseStatus,
    LeaseStatus,
    MaintenanceStatus,
    Role,
    ViewingStatus,
)
from rental_manager.entrypoints.web import charts
from rental_manager.entrypoints.web.core import (
    Form,
    Svc,
    User,
    Viewer,
    WebRoute,
    day,
    error_page,
    home_of,
    ids,
    markup,
    money,
    page_number,
    pages,
    redirect,
    render,
)
from rental_manager.entrypoints.web.forms import FormInvalid, cents, moment, parse, present
from rental_manager.entrypoints.web.session import PREFIX, end_session, local_target, start_session
from rental_manager.service import (
    arrears,
    billing,
    community,
    directory,
    houses,
    maintenance,
    rentals,
    stats,
    users,
)
from rental_manager.service.commands import (
    AddPhoto,
    ApplyForHouse,
    ChangeHouseStatus,
    ChangeViewing,
    Decision,
    ForgetHouse,
    ListHouse,
    MaintenanceTerms,
    MoveMaintenance,
    PayBill,
    PublishAnnouncement,
    RegisterUser,
    RejectApplication,
    RemovePhoto,
    RenewLease,
    RequestMaintenance,
    RequestViewing,
    ReviewHouse,
    SaveHouse,
    SignLease,
    TerminateLease,
    UpdateHouse,
    WithdrawApplication,
)
from rental_manager.service.errors import Conflict, Forbidden, TooManyAttempts, Unauthorized
from rental_manager.service.schemas import (
    HouseQuery,
    Page,
)
from rental_manager.service.unit import Actor

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)

PAGE_SIZE = 20


def _enum(kind: type[Any], raw: str | None) -> Any:
    """A status filter from the query string, or None when absent or unknown."""
    try:
        return kind(raw) if raw else None
    except ValueError:
        return None


def _uuid(raw: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


# ---- sign-in, sign-up, sign-out ------------------------------------------------------------------------


@router.get("/")
def index(actor: Viewer) -> Response:
    """The landing page: search for visitors and tenants, the dashboard for landlords and admins."""
    return Response(status_code=303, headers={"Location": home_of(actor)})


@router.get("/login")
def login_form(request: Request, actor: Viewer, next: str | None = None) -> Response:
    """The sign-in form."""
    if actor is not None:
        return redirect(request, local_target(next, home_of(actor)))
    return render(request, "login.html", {"next": local_target(next, ""), "values": {}, "errors": {}})


@router.post("/login")
def login(request: Request, svc: Svc, form: Form) -> Response:
    """Check the credentials and keep the access token in the session cookie."""
    values = {"email": form.get("email", "")}
    errors = {k: "required" for k in ("email", "password") if not form.get(k)}
    retry_after: int | None = None
    if not errors:
        try:
            token = svc.login(form["email"], form["password"], client_address(request))
        except Unauthorized as exc:
            errors = {"form": str(exc)}
        except TooManyAttempts as exc:
            errors, retry_after = {"form": str(exc)}, exc.retry_after_s
        else:
            actor = svc.actor(token.access_token)
            start_session(request, token.access_token, token.expires_in)
            me = svc.run(users.me, actor)
            target = local_target(form.get("next"), home_of(actor))
            return redirect(request, target, "success", f"Welcome back, {me.full_name}.")
    context = {"next": local_target(form.get("next"), ""), "values": values, "errors": errors}
    if retry_after is not None:
        page = render(request, "login.html", context, 429)
        page.headers["Retry-After"] = str(retry_after)
        return page
    return render(request, "login.html", context, 401 if "form" in errors else 422)


@router.post("/logout")
def logout(request: Request, svc: Svc, actor: Viewer, form: Form) -> Response:
    """Revoke the session's token server-side (a copied cookie dies with it) and forget the cookie."""
    if actor is not None:
        svc.run(users.sign_out, actor)
    end_session(request)
    return redirect(request, f"{PREFIX}/login", "info", "You are signed out.")


@router.get("/register")
def register_form(request: Request, actor: Viewer) -> Response:
    """The sign-up form."""
    if actor is not None:
        return redirect(request, home_of(actor))
    return render(request, "register.html", {"values": {"role": "tenant"}, "errors": {}})


@router.post("/register")
def register(request: Request, svc: Svc, form: Form) -> Response:
    """Create a tenant or landlord account and sign it in."""
    data = present(form, "email", "password", "full_name", "role")
    try:
        if form.get("password") != form.get("password_again"):
            raise FormInvalid({"password_again": "the two passwords differ"})
        user = svc.run(users.register, svc.credentials, parse(RegisterUser, data))
    except FormInvalid as exc:
        values = {k: v for k, v in data.items() if k != "password"}
        return render(request, "register.html", {"values": values, "errors": exc.errors}, 422)
    except Conflict as exc:
        values = {k: v for k, v in data.items() if k != "password"}
        return render(request, "register.html", {"values": values, "errors": {"email": str(exc)}}, 409)
    token = svc.login(data["email"], data["password"], client_address(request))
    start_session(request, token.access_token, token.expires_in)
    target = home_of(Actor(user.id, user.role))
    return redirect(request, target, "success", f"Welcome to Quartet Homes, {user.full_name}.")


# ---- houses: search and detail -----------------------------------------------------------------------------

SEARCH_FIELDS = {
    "min_rent_cents": "min_rent",
    "max_rent_cents": "max_rent",
}


@router.get("/houses")
def search(request: Request, svc: Svc, actor: Viewer) -> Response:
    """Browse and search listed houses: filters, sorting and paging (through the cached search)."""
    raw = {k: v.strip() for k, v in request.query_params.items() if v.strip()}
    errors: dict[str, str] = {}
    data: dict[str, Any] = present(
        raw,
        "city",
        "district",
        "min_rooms",
        "max_rooms",
        "min_area_m2",
        "max_area_m2",
        "available_from",
        "sort",
        "page",
    )
    for field, name in SEARCH_FIELDS.items():
        amount = cents(raw.get(name, ""), name, errors)
        if amount is not None:
            data[field] = amount
    data["page_size"] = 12
    try:
        query = parse(HouseQuery, data, fields=SEARCH_FIELDS, pending=errors)
        result = svc.search(query)
    except FormInvalid as exc:
        errors = exc.errors
        result = None
    context: dict[str, Any] = {"values": raw, "errors": errors, "result": result, "saved": _saved(svc, actor)}
    context["links"] = pages(request, result) if result else []
    return render(request, "houses.html", context, 422 if errors else 200)


def _saved(svc: Svc, actor: Actor | None) -> set[uuid.UUID]:
    if actor is None or actor.role is not Role.TENANT:
        return set()
    return {f.house.id for f in svc.run(community.list_favourites, actor)}


def _house_page(
    request: Request,
    svc: Svc,
    actor: Actor | None,
    house_id: uuid.UUID,
    *,
    errors: dict[str, dict[str, str]] | None = None,
    values: dict[str, dict[str, str]] | None = None,
    status: int = 200,
) -> Response:
    house = svc.run(houses.get_house, actor, house_id)
    reviews = svc.run(community.list_reviews, actor, house_id, 1, 20)
    context: dict[str, Any] = {
        "house": house,
        "reviews": reviews,
        "errors": errors or {},
        "values": values or {},
        "saved": house_id in _saved(svc, actor),
        "mine": [],
        "my_viewings": [],
        "manages": False,
    }
    if actor is not None and actor.role is Role.TENANT:
        context["mine"] = svc.run(rentals.list_applications, actor, None, house_id, 1, 20).items
        context["my_viewings"] = svc.run(rentals.list_viewings, actor, house_id, 1, 20).items
    elif actor is not None:
        context["manages"] = actor.is_admin or house.landlord_id == actor.id
    names = svc.run(directory.people, actor, ids(r.tenant_id for r in reviews.items)) if actor else {}
    context["names"] = names
    today = svc.today()
    tomorrow = datetime.combine(today + timedelta(days=1), time(10, 0))
    context["defaults"] = {
        "scheduled_at": tomorrow.strftime("%Y-%m-%dT%H:%M"),
        "start_date": max(today, house.available_from).isoformat(),
        "end_date": (max(today, house.available_from) + timedelta(days=364)).isoformat(),
    }
    return render(request, "house.html", context, status)


@router.get("/houses/{house_id}")
def house_detail(request: Request, svc: Svc, actor: Viewer, house_id: uuid.UUID) -> Response:
    """A house: photos, facts, reviews, and the forms to book a viewing, apply, save and review."""
    return _house_page(request, svc, actor, house_id)


@router.post("/houses/{house_id}/viewings")
def book_viewing(request: Request, svc: Svc, actor: User, form: Form, house_id: uuid.UUID) -> Response:
    """Book a viewing of the house (tenants)."""
    data = {"scheduled_at": moment(form.get("scheduled_at", "")), "note": form.get("note", "")}
    try:
        viewing = svc.run(rentals.request_viewing, actor, parse(RequestViewing, {**data, "house_id": house_id}))
    except (FormInvalid, InvalidValue) as exc:
        problems = exc.errors if isinstance(exc, FormInvalid) else {exc.field: str(exc)}
        values = {"viewing": dict(form)}
        return _house_page(request, svc, actor, house_id, errors={"viewing": problems}, values=values, status=422)
    when = viewing.scheduled_at.astimezone(UTC)
    message = f"Viewing requested for {when.day} {when:%b %Y at %H:%M} UTC. The landlord will confirm it."
    return redirect(request, f"{PREFIX}/houses/{house_id}", "success", message)


@router.post("/houses/{house_id}/applications")
def apply(request: Request, svc: Svc, actor: User, form: Form, house_id: uuid.UUID) -> Response:
    """Apply to rent the house for a period (tenants)."""
    data = present(form, "start_date", "end_date", "message")
    try:
        svc.run(rentals.submit_application, actor, parse(ApplyForHouse, {**data, "house_id": house_id}))
    except (FormInvalid, InvalidValue, RuleViolation) as exc:
        if isinstance(exc, FormInvalid):
            problems = exc.errors
        elif isinstance(exc, InvalidValue):
            problems = {exc.field: str(exc)}
        else:
            problems = {"form": str(exc)}
        values = {"apply": dict(form)}
        return _house_page(request, svc, actor, house_id, errors={"apply": problems}, values=values, status=422)
    message = "Application sent. You will find its status under Applications."
    return redirect(request, f"{PREFIX}/applications", "success", message)


@router.post("/houses/{house_id}/favourite")
def favourite(request: Request, svc: Svc, actor: User, form: Form, house_id: uuid.UUID) -> Response:
    """Save the house to, or remove it from, the tenant's favourites."""
    if form.get("action") == "remove":
        svc.run(community.remove_favourite, actor, ForgetHouse(house_id=house_id))
        message = "Removed from your saved homes."
    else:
        svc.run(community.add_favourite, actor, SaveHouse(house_id=house_id))
        message = "Saved. Find it again under Saved."
    return redirect(request, local_target(form.get("next"), f"{PREFIX}/houses/{house_id}"), "success", message)


@router.post("/houses/{house_id}/reviews")
def review(request: Request, svc: Svc, actor: User, form: Form, house_id: uuid.UUID) -> Response:
    """Review the house (tenants of a current or past lease)."""
    data = present(form, "rating", "comment")
    try:
        svc.run(community.post_review, actor, parse(ReviewHouse, {**data, "house_id": str(house_id)}))
    except FormInvalid as exc:
        values = {"review": dict(form)}
        return _house_page(request, svc, actor, house_id, errors={"review": exc.errors}, values=values, status=422)
    except (Forbidden, Conflict) as exc:
        return redirect(request, f"{PREFIX}/houses/{house_id}", "error", str(exc))
    return redirect(request, f"{PREFIX}/houses/{house_id}", "success", "Thank you: your review is published.")


@router.get("/favourites")
def favourites(request: Request, svc: Svc, actor: User) -> Response:
    """The tenant's saved houses."""
    saved = svc.run(community.list_favourites, actor)
    return render(request, "favourites.html", {"saved": saved})


# ---- viewings and applications -------------------------------------------------------------------------------


def _labels(svc: Svc, actor: Actor, items: list[Any]) -> dict[str, Any]:
    house_ids = ids(getattr(i, "house_id", None) for i in items)
    people = ids(getattr(i, "tenant_id", None) for i in items) | ids(getattr(i, "landlord_id", None) for i in items)
    return {
        "house_names": svc.run(directory.house_labels, actor, house_ids),
        "names": svc.run(directory.people, actor, people),
    }


def _listing(
    request: Request,
    result: Page[Any],
    status: StrEnum | None = None,
    kind: type[StrEnum] | None = None,
    labels: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The context every list page shares: the page of rows, status filter, pagination and row labels."""
    return {
        "result": result,
        "status": status.value if status else "",
        "statuses": [s.value for s in kind] if kind else [],
        "links": pages(request, result),
        **(labels or {}),
        **extra,
    }


@router.get("/viewings")
def viewings(request: Request, svc: Svc, actor: User) -> Response:
    """Viewings: a tenant's own bookings, or those of a landlord's houses, with what each side may do next."""
    result = svc.run(rentals.list_viewings, actor, None, page_number(request), PAGE_SIZE)
    moves = {v.id: VIEWING.targets(v.status, actor.party) for v in result.items}
    context = _listing(request, result, labels=_labels(svc, actor, result.items), moves=moves)
    return render(request, "viewings.html", context)


@router.post("/viewings/{viewing_id}/status")
def move_viewing(request: Request, svc: Svc, actor: User, form: Form, viewing_id: uuid.UUID) -> Response:
    """Confirm, decline, complete or cancel a viewing."""
    target = ViewingStatus(form.get("status", ""))
    svc.run(rentals.change_viewing, actor, ChangeViewing(viewing_id=viewing_id, status=target))
    return redirect(request, f"{PREFIX}/viewings", "success", f"Viewing {target.value}.")


@router.get("/applications")
def applications(request: Request, svc: Svc, actor: User) -> Response:
    """Applications: a tenant's own, or those on a landlord's houses, filterable by status."""
    status = _enum(ApplicationStatus, request.query_params.get("status"))
    result = svc.run(rentals.list_applications, actor, status, None, page_number(request), PAGE_SIZE)
    moves = {a.id: APPLICATION.targets(a.status, actor.party) for a in result.items}
    context = _listing(request, result, status, ApplicationStatus, _labels(svc, actor, result.items), moves=moves)
    return render(request, "applications.html", context)


@router.post("/applications/{application_id}/{action}")
def decide(request: Request, svc: Svc, actor: User, form: Form, application_id: uuid.UUID, action: str) -> Response:
    """Approve or reject (the landlord) or withdraw (the applicant) an application."""
    back = local_target(form.get("next"), f"{PREFIX}/applications")
    reason = parse(Decision, present(form, "reason")).reason if form.get("reason") else ""
    if action == "approve":
        done = svc.run(rentals.approve_application, actor, SignLease(application_id=application_id, reason=reason))
        return redirect(
            request, back, "success", f"Approved: the lease is signed, {day(done.start_date)} to {day(done.end_date)}."
        )
    if action == "reject":
        svc.run(rentals.reject_application, actor, RejectApplication(application_id=application_id, reason=reason))
        return redirect(request, back, "success", "Application rejected.")
    if action == "withdraw":
        svc.run(rentals.withdraw_application, actor, WithdrawApplication(application_id=application_id))
        return redirect(request, back, "success", "Application withdrawn.")
    return error_page(request, 404, "Not found", "There is no such action.")


# ---- leases, bills, payments -----------------------------------------------------------------------------------


@router.get("/leases")
def leases(request: Request, svc: Svc, actor: User) -> Response:
    """Leases the user is party to (every lease, for admins)."""
    status = _enum(LeaseStatus, request.query_params.get("status"))
    result = svc.run(rentals.list_leases, actor, status, None, page_number(request), PAGE_SIZE)
    owed = svc.run(billing.owed_by_lease, actor, [lease.id for lease in result.items])
    context = _listing(request, result, status, LeaseStatus, _labels(svc, actor, result.items), owed=owed)
    return render(request, "leases.html", context)


@router.post("/leases/{lease_id}/renew")
def renew(request: Request, svc: Svc, actor: User, form: Form, lease_id: uuid.UUID) -> Response:
    """Extend a lease to a later last day (its landlord)."""
    try:
        lease = svc.run(
            rentals.renew_lease, actor, parse(RenewLease, {**present(form, "end_date"), "lease_id": lease_id})
        )
    except FormInvalid as exc:
        return redirect(request, f"{PREFIX}/leases", "error", f"Renewal: {exc}")
    return redirect(request, f"{PREFIX}/leases", "success", f"Lease renewed until {day(lease.end_date)}.")


@router.post("/leases/{lease_id}/terminate")
def terminate(request: Request, svc: Svc, actor: User, form: Form, lease_id: uuid.UUID) -> Response:
    """End a lease early (either side)."""
    try:
        data = parse(TerminateLease, {**present(form, "end_date", "reason"), "lease_id": lease_id})
        lease = svc.run(rentals.terminate_lease, actor, data)
    except FormInvalid as exc:
        return redirect(request, f"{PREFIX}/leases", "error", f"Termination: {exc}")
    return redirect(request, f"{PREFIX}/leases", "success", f"Lease terminated; its last day is {day(lease.end_date)}.")


def _bills_page(
    request: Request,
    svc: Svc,
    actor: Actor,
    *,
    errors: dict[uuid.UUID, dict[str, str]] | None = None,
    status: int = 200,
) -> Response:
    bill_status = _enum(BillStatus, request.query_params.get("status"))
    lease_id = _uuid(request.query_params.get("lease_id"))
    result = svc.run(billing.list_bills, actor, bill_status, lease_id, page_number(request), PAGE_SIZE)
    payments = svc.run(billing.list_payments, actor, None, 1, 10)
    context = _listing(
        request,
        result,
        bill_status,
        BillStatus,
        _labels(svc, actor, result.items),
        payments=payments,
        errors=errors or {},
        payable=svc.run(billing.payable_bills, actor, [b.id for b in result.items]),
        reference=uuid.uuid4().hex,
    )
    return render(request, "bills.html", context, status)


@router.get("/bills")
def bills(request: Request, svc: Svc, actor: User) -> Response:
    """Bills with what is owed, the pay form for open ones, and the latest payments."""
    return _bills_page(request, svc, actor)


@router.post("/bills/{bill_id}/pay")
def pay(request: Request, svc: Svc, actor: User, form: Form, bill_id: uuid.UUID) -> Response:
    """Pay part or all of a bill (its tenant), or record a payment (its landlord)."""
    pending: dict[str, str] = {}
    data: dict[str, Any] = present(form, "method", "reference")
    amount = cents(form.get("amount", ""), "amount", pending)
    if amount is not None:
        data["amount_cents"] = amount
    elif not pending:
        pending["amount"] = "enter the amount to pay"
    try:
        payment = svc.run(
            billing.record_payment,
            actor,
            parse(PayBill, {**data, "bill_id": bill_id}, fields={"amount_cents": "amount"}, pending=pending),
        )
    except FormInvalid as exc:
        return _bills_page(request, svc, actor, errors={bill_id: exc.errors}, status=422)
    except RuleViolation as exc:
        owed = svc.run(billing.get_bill, actor, bill_id).outstanding_cents
        problem = f"That is more than the {money(owed)} still owed." if exc.rule == "overpayment" else str(exc)
        return _bills_page(request, svc, actor, errors={bill_id: {"amount": problem}}, status=409)
    bill = svc.run(billing.get_bill, actor, bill_id)
    if bill.outstanding_cents:
        message = f"Paid {money(payment.amount_cents)}. Still owed on this bill: {money(bill.outstanding_cents)}."
    else:
        message = f"Paid {money(payment.amount_cents)}. This bill is settled."
    return redirect(request, local_target(form.get("next"), f"{PREFIX}/bills"), "success", message)


# ---- maintenance -------------------------------------------------------------------------------------------------


def _maintenance_page(
    request: Request,
    svc: Svc,
    actor: Actor,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    state = _enum(MaintenanceStatus, request.query_params.get("status"))
    result = svc.run(maintenance.list_maintenance, actor, state, None, page_number(request), PAGE_SIZE)
    homes: list[Any] = []
    if actor.role is Role.TENANT:
        homes = svc.run(rentals.list_leases, actor, LeaseStatus.ACTIVE, None, 1, 50).items
    context = _listing(
        request,
        result,
        state,
        MaintenanceStatus,
        _labels(svc, actor, [*result.items, *homes]),
        moves={m.id: MAINTENANCE.targets(m.status, actor.party) for m in result.items},
        homes=homes,
        history=svc.run(directory.maintenance_histories, actor, [m.id for m in result.items]),
        errors=errors or {},
        values=values or {},
    )
    return render(request, "maintenance.html", context, status)


@router.get("/maintenance")
def maintenance_queue(request: Request, svc: Svc, actor: User) -> Response:
    """Repair requests: the tenant's own (and the form to file one), or a landlord's queue."""
    return _maintenance_page(request, svc, actor)


@router.post("/maintenance")
def report_repair(request: Request, svc: Svc, actor: User, form: Form) -> Response:
    """File a repair request for the house the tenant lives in."""
    house_id = _uuid(form.get("house_id"))
    try:
        if house_id is None:
            parse(MaintenanceTerms, present(form, "title", "description", "priority"))
            raise FormInvalid({"house_id": "choose the home that needs the repair"})
        fields = {**present(form, "title", "description", "priority"), "house_id": house_id}
        svc.run(maintenance.request_maintenance, actor, parse(RequestMaintenance, fields))
    except FormInvalid as exc:
        return _maintenance_page(request, svc, actor, errors=exc.errors, values=dict(form), status=422)
    except Forbidden as exc:
        return _maintenance_page(request, svc, actor, errors={"house_id": str(exc)}, values=dict(form), status=403)
    return redirect(request, f"{PREFIX}/maintenance", "success", "Repair request sent to your landlord.")


@router.post("/maintenance/{request_id}/status")
def move_repair(request: Request, svc: Svc, actor: User, form: Form, request_id: uuid.UUID) -> Response:
    """Move a repair request along its flow (acknowledge, start, resolve, close, ...)."""
    change = parse(MoveMaintenance, {**present(form, "status", "note"), "request_id": request_id})
    done = svc.run(maintenance.transition_maintenance, actor, change)
    return redirect(
        request, f"{PREFIX}/maintenance", "success", f"“{done.title}” is now {done.status.value.replace('_', ' ')}."
    )


# ---- a landlord's houses -------------------------------------------------------------------------------------------

HOUSE_FIELDS = {"monthly_rent_cents": "monthly_rent", "deposit_cents": "deposit"}
HOUSE_TEXT = ("title", "description", "address", "city", "district", "area_m2", "rooms", "available_from")


def _house_data(form: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = present(form, *HOUSE_TEXT)
    if "description" in form:
        data["description"] = form["description"]
    for field, name in HOUSE_FIELDS.items():
        amount = cents(form.get(name, ""), name, errors)
        if amount is not None:
            data[field] = amount
    data["facilities"] = [f.strip() for f in form.get("facilities", "").split(",") if f.strip()]
    return data


@router.get("/my-houses")
def my_houses(request: Request, svc: Svc, actor: User) -> Response:
    """A landlord's houses in every status (all houses, for admins), with their listing actions."""
    status = _enum(HouseStatus, request.query_params.get("status"))
    result = svc.run(houses.managed_houses, actor, status, page_number(request), PAGE_SIZE)
    moves = {h.id: HOUSE.targets(h.status, actor.party) for h in result.items}
    names = {"names": svc.run(directory.people, actor, ids(h.landlord_id for h in result.items))}
    context = _listing(request, result, status, HouseStatus, names, moves=moves)
    return render(request, "my_houses.html", context)


def _landlords(svc: Svc, actor: Actor) -> list[Any]:
    return svc.run(users.list_users, actor, Role.LANDLORD, 1, 100).items if actor.is_admin else []


@router.get("/my-houses/new")
def new_house_form(request: Request, svc: Svc, actor: User) -> Response:
    """The form for a new house (landlords; admins pick the landlord)."""
    houses.may_add_houses(actor)
    context = {"house": None, "values": {"list_now": "on"}, "errors": {}, "landlords": _landlords(svc, actor)}
    return render(request, "house_form.html", context)


@router.post("/my-houses/new")
def create_house(request: Request, svc: Svc, actor: User, form: Form) -> Response:
    """Add a house, listed at once or kept as a draft."""
    pending: dict[str, str] = {}
    data = _house_data(form, pending)
    data["list_now"] = form.get("list_now") == "on"
    if form.get("landlord_id"):
        data["landlord_id"] = form["landlord_id"]
    try:
        house = svc.run(houses.create_house, actor, parse(ListHouse, data, fields=HOUSE_FIELDS, pending=pending))
    except FormInvalid as exc:
        context = {"house": None, "values": form, "errors": exc.errors, "landlords": _landlords(svc, actor)}
        return render(request, "house_form.html", context, 422)
    state = "listed" if house.status is HouseStatus.LISTED else "saved as a draft"
    return redirect(request, f"{PREFIX}/my-houses", "success", f"“{house.title}” is {state}.")


def _house_values(house: Any) -> dict[str, str]:
    values = {k: str(getattr(house, k)) for k in HOUSE_TEXT}
    values["monthly_rent"] = f"{house.monthly_rent_cents // 100}.{house.monthly_rent_cents % 100:02d}"
    values["deposit"] = f"{house.deposit_cents // 100}.{house.deposit_cents % 100:02d}"
    values["facilities"] = ", ".join(house.facilities)
    return values


@router.get("/my-houses/{house_id}/edit")
def edit_house_form(request: Request, svc: Svc, actor: User, house_id: uuid.UUID) -> Response:
    """The form to change a house's details and photos (its landlord or an admin)."""
    house = svc.run(directory.managed_house_public, actor, house_id)
    context = {"house": house, "values": _house_values(house), "errors": {}, "photo": {}, "photo_errors": {}}
    return render(request, "house_form.html", context)


@router.post("/my-houses/{house_id}/edit")
def edit_house(request: Request, svc: Svc, actor: User, form: Form, house_id: uuid.UUID) -> Response:
    """Save changes to a house."""
    pending: dict[str, str] = {}
    data = _house_data(form, pending)
    try:
        changes = parse(UpdateHouse, {**data, "house_id": str(house_id)}, fields=HOUSE_FIELDS, pending=pending)
        house = svc.run(houses.update_house, actor, changes)
    except FormInvalid as exc:
        house = svc.run(directory.managed_house_public, actor, house_id)
        context = {"house": house, "values": form, "errors": exc.errors, "photo": {}, "photo_errors": {}}
        return render(request, "house_form.html", context, 422)
    return redirect(request, f"{PREFIX}/my-houses/{house_id}/edit", "success", f"“{house.title}” is saved.")


@router.post("/my-houses/{house_id}/status")
def house_status(request: Request, svc: Svc, actor: User, form: Form, house_id: uuid.UUID) -> Response:
    """List, unlist or archive a house."""
    target = HouseStatus(form.get("status", ""))
    house = svc.run(houses.change_status, actor, ChangeHouseStatus(house_id=house_id, status=target))
    return redirect(
        request,
        local_target(form.get("next"), f"{PREFIX}/my-houses"),
        "success",
        f"“{house.title}” is now {target.value}.",
    )


@router.post("/my-houses/{house_id}/photos")
def add_photo(request: Request, svc: Svc, actor: User, form: Form, house_id: uuid.UUID) -> Response:
    """Attach a photo (its address and size) to a house."""
    data = present(form, "url", "caption", "width", "height", "size_bytes")
    try:
        svc.run(houses.add_photo, actor, parse(AddPhoto, {**data, "house_id": str(house_id)}))
    except FormInvalid as exc:
        house = svc.run(directory.managed_house_public, actor, house_id)
        context = {
            "house": house,
            "values": _house_values(house),
            "errors": {},
            "photo": form,
            "photo_errors": exc.errors,
        }
        return render(request, "house_form.html", context, 422)
    return redirect(request, f"{PREFIX}/my-houses/{house_id}/edit", "success", "Photo added.")


@router.post("/my-houses/{house_id}/photos/{photo_id}/delete")
def remove_photo(
    request: Request, svc: Svc, actor: User, form: Form, house_id: uuid.UUID, photo_id: uuid.UUID
) -> Response:
    """Detach a photo from a house."""
    svc.run(houses.remove_photo, actor, RemovePhoto(house_id=house_id, photo_id=photo_id))
    return redirect(request, f"{PREFIX}/my-houses/{house_id}/edit", "success", "Photo removed.")


# ---- dashboard, billing run, announcements ----------------------------------------------------------------------


@router.get("/dashboard")
def dashboard(request: Request, svc: Svc, actor: User) -> Response:
    """Occupancy, income per month and arrears, as figures and server-drawn charts (landlords and admins)."""
    landlord = _uuid(request.query_params.get("landlord_id")) if actor.is_admin else None
    figures = svc.run(stats.statistics, actor, 12, landlord)
    owed = svc.run(arrears.arrears, actor, landlord)
    context: dict[str, Any] = {
        "stats": figures,
        "arrears": owed,
        "income_12m": sum(m.income_cents for m in figures.months),
        "billed_12m": sum(m.billed_cents for m in figures.months),
        "charts": {
            "occupancy": markup(charts.occupancy_chart(figures.months)),
            "income": markup(charts.income_chart(figures.months)),
            "arrears": markup(charts.arrears_chart(owed.buckets)),
        },
        "landlords": _landlords(svc, actor),
        "landlord_id": str(landlord) if landlord else "",
        "people": {},
    }
    if actor.is_admin:
        context["people"] = {r.value: svc.run(users.list_users, actor, r, 1, 1).total for r in Role}
    return render(request, "dashboard.html", context)


@router.post("/admin/billing")
def billing_run(request: Request, svc: Svc, actor: User, form: Form) -> Response:
    """Run bill generation, lease ending and overdue marking now (admins)."""
    report = svc.run_billing(actor)
    message = (
        f"Billing run for {report.as_of}: {report.bills_issued} bills issued, {report.bills_overdue} marked overdue, "
        f"{report.leases_ended} leases ended."
    )
    return redirect(request, f"{PREFIX}/dashboard", "success", message)


def _announcements_page(
    request: Request,
    svc: Svc,
    actor: Actor,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    result = svc.run(community.list_announcements, actor, page_number(request), PAGE_SIZE)
    own: list[Any] = []
    if actor.role is Role.LANDLORD:
        own = svc.run(houses.managed_houses, actor, None, 1, 100).items
    labels = {"house_names": svc.run(directory.house_labels, actor, ids(a.house_id for a in result.items))}
    context = _listing(request, result, labels=labels, own=own, errors=errors or {}, values=values or {})
    return render(request, "announcements.html", context, status)


@router.get("/announcements")
def announcements(request: Request, svc: Svc, actor: User) -> Response:
    """Notices for the user, and the form to publish one (admins, landlords)."""
    return _announcements_page(request, svc, actor)


@router.post("/announcements")
def announce(request: Request, svc: Svc, actor: User, form: Form) -> Response:
    """Publish a notice: to everyone (admins) or to one house's tenants."""
    try:
        note = svc.run(
            community.publish_announcement,
            actor,
            parse(PublishAnnouncement, present(form, "title", "body", "house_id")),
        )
    except FormInvalid as exc:
        return _announcements_page(request, svc, actor, errors=exc.errors, values=dict(form), status=422)
    return redirect(request, f"{PREFIX}/announcements", "success", f"“{note.title}” is published.")
