"""The rental manager's HTTP API: thin routes over the service layer, errors as RFC 9457 problem bodies.

Routes only parse, authenticate and call `RentalService`; every rule lives in the service layer and the
domain, so the web UI calling the same service behaves the same.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from quartet_shared.consumer import ConsumerRunner
from quartet_shared.health import database_ready, kafka_ready
from quartet_shared.http import create_app, problem_response
from starlette.concurrency import run_in_threadpool

from rental_manager.adapters.relay import OutboxRelay
from rental_manager.adapters.throttle import client_address
from rental_manager.bootstrap import Rental
from rental_manager.domain.errors import ForbiddenMove, InvalidTransition, InvalidValue, RuleViolation
from rental_manager.domain.model import (
    ApplicationStatus,
    BillStatus,
    HouseStatus,
    LeaseStatus,
    MaintenanceStatus,
    Role,
    ViewingStatus,
)
from rental_manager.entrypoints.headers import SecurityHeaders
from rental_manager.entrypoints.web import mount_web
from rental_manager.entrypoints.worker import BillingScheduler
from rental_manager.service import billing, community, houses, maintenance, rentals, stats, users
from rental_manager.service.access import require
from rental_manager.service.commands import (
    AddPhoto,
    ApplyForHouse,
    ChangeHouseStatus,
    ChangeViewing,
    Decision,
    ForgetHouse,
    LeaseRenewal,
    LeaseTermination,
    MaintenanceTransition,
    MoveMaintenance,
    PayBill,
    PublishAnnouncement,
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
from rental_manager.service.errors import Conflict, Forbidden, NotFound, TooManyAttempts, Unauthorized
from rental_manager.service.facade import RentalService
from rental_manager.service.read_models import (
    AnnouncementRecord,
    ApplicationRecord,
    BillRecord,
    FavouriteRecord,
    HouseRecord,
    HouseSummary,
    LeaseRecord,
    MaintenanceRecord,
    PaymentRecord,
    PhotoRecord,
    ReviewRecord,
    UserRecord,
    ViewingRecord,
)
from rental_manager.service.schemas import (
    AdminUserCreate,
    AnnouncementCreate,
    ApplicationCreate,
    BillingReport,
    BillingRun,
    HouseCreate,
    HouseQuery,
    HouseUpdate,
    MaintenanceCreate,
    Page,
    PaymentCreate,
    PhotoCreate,
    ReviewCreate,
    Stats,
    Token,
    UserCreate,
    ViewingCreate,
    ViewingTransition,
)
from rental_manager.service.unit import Actor

oauth2 = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


def get_service(request: Request) -> RentalService:
    """The service layer the app was built with."""
    service: RentalService = request.app.state.service
    return service


Svc = Annotated[RentalService, Depends(get_service)]


def optional_actor(svc: Svc, token: Annotated[str | None, Depends(oauth2)]) -> Actor | None:
    """The caller, if they sent a bearer token (a bad token is a 401, never a silent anonymous)."""
    return svc.actor(token) if token else None


def current_actor(actor: Annotated[Actor | None, Depends(optional_actor)]) -> Actor:
    """The authenticated caller (401 without credentials)."""
    return require(actor)


MaybeUser = Annotated[Actor | None, Depends(optional_actor)]
User = Annotated[Actor, Depends(current_actor)]
PageNo = Annotated[int, Query(ge=1, le=10_000)]
PageSize = Annotated[int, Query(ge=1, le=100)]


def _install_error_handlers(app: FastAPI) -> None:
    async def unauthorized(request: Request, exc: Exception) -> JSONResponse:
        response = problem_response(request, 401, "Unauthorized", str(exc))
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    async def forbidden(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(request, 403, "Forbidden", str(exc))

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(request, 404, "Not Found", str(exc))

    async def conflict(request: Request, exc: Exception) -> JSONResponse:
        extra: dict[str, Any] = {}
        if isinstance(exc, InvalidTransition):
            extra = {"entity": exc.entity, "current": exc.current, "target": exc.target}
        elif isinstance(exc, RuleViolation):
            extra = {"rule": exc.rule}
        return problem_response(request, 409, "Conflict", str(exc), **extra)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        field = exc.field if isinstance(exc, InvalidValue) else "body"
        errors = [{"field": field, "message": str(exc)}]
        return problem_response(request, 422, "Invalid request", f"invalid fields: {field}", errors=errors)

    async def too_many(request: Request, exc: Exception) -> JSONResponse:
        wait = exc.retry_after_s if isinstance(exc, TooManyAttempts) else 60
        response = problem_response(request, 429, "Too Many Requests", str(exc), retry_after_s=wait)
        response.headers["Retry-After"] = str(wait)
        return response

    app.add_exception_handler(Unauthorized, unauthorized)
    app.add_exception_handler(TooManyAttempts, too_many)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(ForbiddenMove, forbidden)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(Conflict, conflict)
    app.add_exception_handler(InvalidTransition, conflict)
    app.add_exception_handler(RuleViolation, conflict)
    app.add_exception_handler(InvalidValue, invalid)


# ---- auth and users -------------------------------------------------------------------------------------

auth = APIRouter(tags=["auth"])


@auth.post("/auth/register", status_code=201)
def register(svc: Svc, body: UserCreate) -> UserRecord:
    """Sign up as a tenant or a landlord."""
    return svc.run(users.register, svc.credentials, body)


@auth.post("/auth/token")
def token(request: Request, svc: Svc, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Token:
    """OAuth2 password flow: the e-mail address as `username`, and the password (throttled after failures)."""
    return svc.login(form.username, form.password, client_address(request))


@auth.post("/auth/logout", status_code=204)
def logout(svc: Svc, actor: User) -> Response:
    """Revoke every token issued to the caller so far (each session of the account ends)."""
    svc.run(users.sign_out, actor)
    return Response(status_code=204)


@auth.get("/users/me")
def me(svc: Svc, actor: User) -> UserRecord:
    """The caller's own account."""
    return svc.run(users.me, actor)


@auth.get("/users")
def list_users(
    svc: Svc, actor: User, role: Role | None = None, page: PageNo = 1, page_size: PageSize = 50
) -> Page[UserRecord]:
    """Every account (admins)."""
    return svc.run(users.list_users, actor, role, page, page_size)


@auth.post("/users", status_code=201)
def create_user(svc: Svc, actor: User, body: AdminUserCreate) -> UserRecord:
    """Create any account, admins included (admins)."""
    return svc.run(users.register, svc.credentials, body, actor)


# ---- houses ----------------------------------------------------------------------------------------------

house_routes = APIRouter(tags=["houses"])


@house_routes.get("/houses", response_model=Page[HouseSummary])
async def search(request: Request, query: Annotated[HouseQuery, Query()]) -> Response:
    """Search listed houses by city, district, rent, rooms, area and availability; sorted and paged; cached."""
    # The hot path stays on the event loop: a hit is two Redis GETs (skipped at once while Redis is marked
    # down), with no thread hop, validation or serialisation; a miss goes to the database in the thread pool.
    svc: RentalService = request.app.state.service
    body = svc.cached_search(query)
    if body is None:
        body = await run_in_threadpool(svc.search_json, query)
    return Response(body, media_type="application/json")


@house_routes.post("/houses", status_code=201)
def create_house(svc: Svc, actor: User, body: HouseCreate) -> HouseRecord:
    """Add a house (landlords; admins name the landlord)."""
    return svc.run(houses.create_house, actor, body)


@house_routes.get("/houses/managed")
def managed(
    svc: Svc, actor: User, status: HouseStatus | None = None, page: PageNo = 1, page_size: PageSize = 50
) -> Page[HouseSummary]:
    """The caller's houses in every status (landlords; all houses for admins)."""
    return svc.run(houses.managed_houses, actor, status, page, page_size)


@house_routes.get("/houses/{house_id}")
def get_house(svc: Svc, actor: MaybeUser, house_id: uuid.UUID) -> HouseRecord:
    """A house with photos and rating."""
    return svc.run(houses.get_house, actor, house_id)


@house_routes.patch("/houses/{house_id}")
def update_house(svc: Svc, actor: User, house_id: uuid.UUID, body: HouseUpdate) -> HouseRecord:
    """Change a house's details."""
    return svc.run(houses.update_house, actor, UpdateHouse(house_id=house_id, **body.model_dump(exclude_unset=True)))


@house_routes.post("/houses/{house_id}/list")
def list_house(svc: Svc, actor: User, house_id: uuid.UUID) -> HouseRecord:
    """Put a house on the market."""
    return svc.run(houses.change_status, actor, ChangeHouseStatus(house_id=house_id, status=HouseStatus.LISTED))


@house_routes.post("/houses/{house_id}/unlist")
def unlist_house(svc: Svc, actor: User, house_id: uuid.UUID) -> HouseRecord:
    """Take a house off the market."""
    return svc.run(houses.change_status, actor, ChangeHouseStatus(house_id=house_id, status=HouseStatus.UNLISTED))


@house_routes.post("/houses/{house_id}/archive")
def archive_house(svc: Svc, actor: User, house_id: uuid.UUID) -> HouseRecord:
    """Retire a house for good."""
    return svc.run(houses.change_status, actor, ChangeHouseStatus(house_id=house_id, status=HouseStatus.ARCHIVED))


@house_routes.post("/houses/{house_id}/photos", status_code=201)
def add_photo(svc: Svc, actor: User, house_id: uuid.UUID, body: PhotoCreate) -> PhotoRecord:
    """Attach a photo's metadata."""
    return svc.run(houses.add_photo, actor, AddPhoto(house_id=house_id, **body.model_dump()))


@house_routes.delete("/houses/{house_id}/photos/{photo_id}", status_code=204)
def remove_photo(svc: Svc, actor: User, house_id: uuid.UUID, photo_id: uuid.UUID) -> Response:
    """Detach a photo."""
    svc.run(houses.remove_photo, actor, RemovePhoto(house_id=house_id, photo_id=photo_id))
    return Response(status_code=204)


@house_routes.put("/houses/{house_id}/favourite")
def favourite(svc: Svc, actor: User, house_id: uuid.UUID) -> FavouriteRecord:
    """Save a house to the caller's favourites (tenants)."""
    return svc.run(community.add_favourite, actor, SaveHouse(house_id=house_id))


@house_routes.delete("/houses/{house_id}/favourite", status_code=204)
def unfavourite(svc: Svc, actor: User, house_id: uuid.UUID) -> Response:
    """Remove a house from the caller's favourites (tenants)."""
    svc.run(community.remove_favourite, actor, ForgetHouse(house_id=house_id))
    return Response(status_code=204)


@house_routes.get("/favourites")
def favourites(svc: Svc, actor: User) -> list[FavouriteRecord]:
    """The caller's saved houses (tenants)."""
    return svc.run(community.list_favourites, actor)


@house_routes.post("/houses/{house_id}/reviews", status_code=201)
def post_review(svc: Svc, actor: User, house_id: uuid.UUID, body: ReviewCreate) -> ReviewRecord:
    """Review a house (tenants of a current or past lease)."""
    return svc.run(community.post_review, actor, ReviewHouse(house_id=house_id, **body.model_dump()))


@house_routes.get("/houses/{house_id}/reviews")
def reviews(
    svc: Svc, actor: MaybeUser, house_id: uuid.UUID, page: PageNo = 1, page_size: PageSize = 50
) -> Page[ReviewRecord]:
    """A house's reviews."""
    return svc.run(community.list_reviews, actor, house_id, page, page_size)


# ---- viewings, applications, leases --------------------------------------------------------------------

rental_routes = APIRouter(tags=["rentals"])


@rental_routes.post("/houses/{house_id}/viewings", status_code=201)
def request_viewing(svc: Svc, actor: User, house_id: uuid.UUID, body: ViewingCreate) -> ViewingRecord:
    """Book a viewing (tenants)."""
    return svc.run(rentals.request_viewing, actor, RequestViewing(house_id=house_id, **body.model_dump()))


@rental_routes.get("/viewings")
def viewings(
    svc: Svc, actor: User, house_id: uuid.UUID | None = None, page: PageNo = 1, page_size: PageSize = 50
) -> Page[ViewingRecord]:
    """Viewings the caller may see."""
    return svc.run(rentals.list_viewings, actor, house_id, page, page_size)


@rental_routes.post("/viewings/{viewing_id}/status")
def change_viewing(svc: Svc, actor: User, viewing_id: uuid.UUID, body: ViewingTransition) -> ViewingRecord:
    """Confirm, decline, complete or cancel a viewing."""
    return svc.run(
        rentals.change_viewing, actor, ChangeViewing(viewing_id=viewing_id, status=ViewingStatus(body.status))
    )


@rental_routes.post("/houses/{house_id}/applications", status_code=201)
def apply(svc: Svc, actor: User, house_id: uuid.UUID, body: ApplicationCreate) -> ApplicationRecord:
    """Apply to rent a house for a period (tenants)."""
    return svc.run(rentals.submit_application, actor, ApplyForHouse(house_id=house_id, **body.model_dump()))


@rental_routes.get("/applications")
def applications(
    svc: Svc,
    actor: User,
    status: ApplicationStatus | None = None,
    house_id: uuid.UUID | None = None,
    page: PageNo = 1,
    page_size: PageSize = 50,
) -> Page[ApplicationRecord]:
    """Applications the caller may see."""
    return svc.run(rentals.list_applications, actor, status, house_id, page, page_size)


@rental_routes.get("/applications/{application_id}")
def application(svc: Svc, actor: User, application_id: uuid.UUID) -> ApplicationRecord:
    """One application."""
    return svc.run(rentals.get_application, actor, application_id)


@rental_routes.post("/applications/{application_id}/approve")
def approve(svc: Svc, actor: User, application_id: uuid.UUID, body: Decision | None = None) -> ApplicationRecord:
    """Approve: sign the lease, reject the pending applications it overlaps (the house's landlord)."""
    return svc.run(
        rentals.approve_application,
        actor,
        SignLease(application_id=application_id, **(body or Decision()).model_dump()),
    )


@rental_routes.post("/applications/{application_id}/reject")
def reject(svc: Svc, actor: User, application_id: uuid.UUID, body: Decision | None = None) -> ApplicationRecord:
    """Turn an application down (the house's landlord)."""
    return svc.run(
        rentals.reject_application,
        actor,
        RejectApplication(application_id=application_id, **(body or Decision()).model_dump()),
    )


@rental_routes.post("/applications/{application_id}/withdraw")
def withdraw(svc: Svc, actor: User, application_id: uuid.UUID) -> ApplicationRecord:
    """Withdraw a pending application (its tenant)."""
    return svc.run(rentals.withdraw_application, actor, WithdrawApplication(application_id=application_id))


@rental_routes.get("/leases")
def leases(
    svc: Svc,
    actor: User,
    status: LeaseStatus | None = None,
    house_id: uuid.UUID | None = None,
    page: PageNo = 1,
    page_size: PageSize = 50,
) -> Page[LeaseRecord]:
    """Leases the caller may see."""
    return svc.run(rentals.list_leases, actor, status, house_id, page, page_size)


@rental_routes.get("/leases/{lease_id}")
def lease(svc: Svc, actor: User, lease_id: uuid.UUID) -> LeaseRecord:
    """One lease."""
    return svc.run(rentals.get_lease, actor, lease_id)


@rental_routes.post("/leases/{lease_id}/renew")
def renew(svc: Svc, actor: User, lease_id: uuid.UUID, body: LeaseRenewal) -> LeaseRecord:
    """Extend a lease (its landlord)."""
    return svc.run(rentals.renew_lease, actor, RenewLease(lease_id=lease_id, **body.model_dump()))


@rental_routes.post("/leases/{lease_id}/terminate")
def terminate(svc: Svc, actor: User, lease_id: uuid.UUID, body: LeaseTermination) -> LeaseRecord:
    """End a lease early (either side)."""
    return svc.run(rentals.terminate_lease, actor, TerminateLease(lease_id=lease_id, **body.model_dump()))


# ---- bills, payments, maintenance, announcements, statistics ---------------------------------------------

money = APIRouter(tags=["bills"])


@money.get("/bills")
def bills(
    svc: Svc,
    actor: User,
    status: BillStatus | None = None,
    lease_id: uuid.UUID | None = None,
    page: PageNo = 1,
    page_size: PageSize = 50,
) -> Page[BillRecord]:
    """Bills the caller may see."""
    return svc.run(billing.list_bills, actor, status, lease_id, page, page_size)


@money.get("/bills/{bill_id}")
def bill(svc: Svc, actor: User, bill_id: uuid.UUID) -> BillRecord:
    """One bill."""
    return svc.run(billing.get_bill, actor, bill_id)


@money.post("/bills/{bill_id}/payments", status_code=201)
def pay(svc: Svc, actor: User, bill_id: uuid.UUID, body: PaymentCreate) -> PaymentRecord:
    """Pay part or all of a bill (its tenant), or record a payment (its landlord)."""
    return svc.run(billing.record_payment, actor, PayBill(bill_id=bill_id, **body.model_dump()))


@money.get("/payments")
def payments(
    svc: Svc, actor: User, bill_id: uuid.UUID | None = None, page: PageNo = 1, page_size: PageSize = 50
) -> Page[PaymentRecord]:
    """The payments ledger, as far as the caller may see it."""
    return svc.run(billing.list_payments, actor, bill_id, page, page_size)


@money.get("/stats")
def statistics(
    svc: Svc,
    actor: User,
    months: Annotated[int, Query(ge=1, le=60)] = 12,
    landlord_id: uuid.UUID | None = None,
) -> Stats:
    """Occupancy, income per month and overdue amounts (landlords: their houses; admins: all or one landlord's)."""
    return svc.run(stats.statistics, actor, months, landlord_id)


@money.post("/admin/billing/run")
def run_billing(svc: Svc, actor: User, body: BillingRun) -> BillingReport:
    """Run bill generation, lease ending and overdue marking as of a day (admins)."""
    return svc.run_billing(actor, body.as_of)


care = APIRouter(tags=["maintenance"])


@care.post("/houses/{house_id}/maintenance", status_code=201)
def request_maintenance(svc: Svc, actor: User, house_id: uuid.UUID, body: MaintenanceCreate) -> MaintenanceRecord:
    """Report something to repair (the house's current tenant)."""
    return svc.run(maintenance.request_maintenance, actor, RequestMaintenance(house_id=house_id, **body.model_dump()))


@care.get("/maintenance")
def maintenance_queue(
    svc: Svc,
    actor: User,
    status: MaintenanceStatus | None = None,
    house_id: uuid.UUID | None = None,
    page: PageNo = 1,
    page_size: PageSize = 50,
) -> Page[MaintenanceRecord]:
    """Maintenance requests the caller may see."""
    return svc.run(maintenance.list_maintenance, actor, status, house_id, page, page_size)


@care.get("/maintenance/{request_id}")
def maintenance_request(svc: Svc, actor: User, request_id: uuid.UUID) -> MaintenanceRecord:
    """One maintenance request with its history."""
    return svc.run(maintenance.get_maintenance, actor, request_id)


@care.post("/maintenance/{request_id}/status")
def move_maintenance(svc: Svc, actor: User, request_id: uuid.UUID, body: MaintenanceTransition) -> MaintenanceRecord:
    """Move a maintenance request along its flow."""
    return svc.run(
        maintenance.transition_maintenance, actor, MoveMaintenance(request_id=request_id, **body.model_dump())
    )


@care.post("/announcements", status_code=201)
def announce(svc: Svc, actor: User, body: AnnouncementCreate) -> AnnouncementRecord:
    """Publish a notice (admins to all; landlords to a house of theirs)."""
    return svc.run(community.publish_announcement, actor, PublishAnnouncement(**body.model_dump()))


@care.get("/announcements")
def announcements(svc: Svc, actor: User, page: PageNo = 1, page_size: PageSize = 50) -> Page[AnnouncementRecord]:
    """Notices for the caller."""
    return svc.run(community.list_announcements, actor, page, page_size)


ROUTERS = (auth, house_routes, rental_routes, money, care)


def create_api(rental: Rental, *, with_relay: bool = False, with_worker: bool = False) -> FastAPI:
    """The app; for `all` its lifespan also runs the outbox relay and the worker beside the API."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        relay: OutboxRelay | None = None
        runners: list[ConsumerRunner] = []
        scheduler: BillingScheduler | None = None
        if with_relay or with_worker:
            rental.ensure_topics()
        if with_relay:
            relay = rental.relay()
            relay.start()
        if with_worker:
            runners = [rental.command_runner(), rental.cache_runner()]
            for runner in runners:
                runner.start()
            scheduler = rental.scheduler()
            scheduler.start()
        try:
            yield
        finally:
            # Together well inside the contract's 30 s: each finishes or abandons its current unit of work.
            if scheduler is not None:
                scheduler.stop(5)
            for runner in runners:
                runner.stop(8)
            if relay is not None:
                relay.stop(8)

    app = create_app(
        title="Quartet rental-manager",
        description="House rental management: houses, applications, leases, bills, payments and maintenance.",
        readiness={
            "kafka": kafka_ready(rental.settings),
            "redis": rental.redis.ping,
            "database": database_ready(rental.engine),
        },
        lifespan=lifespan,
        max_request_bytes=rental.settings.max_request_bytes,
    )
    app.state.service = rental.service
    app.state.rental = rental
    _install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    mount_web(app)
    docs = (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
    app.add_middleware(SecurityHeaders, docs_paths=frozenset(p for p in docs if p))
    return app
