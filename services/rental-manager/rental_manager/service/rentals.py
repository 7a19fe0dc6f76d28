"""Viewings, applications and leases: the path from a house hunter's visit to a signed, renewed or ended lease.

Everything that could let a house twice runs under a lock on the house row (`SELECT ... FOR UPDATE`):
submitting an application, approving one, renewing and terminating a lease. Those transactions on one house
therefore run one after another, each seeing what the previous one committed, and the exclusion constraint
on the leases table backs them up should any path ever forget the lock.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from quartet_contracts.schemas.rental import (
    ApplicationApproved,
    ApplicationRejected,
    ApplicationSubmitted,
    ApplicationWithdrawn,
    BillCancelled,
    LeaseRenewed,
    LeaseSigned,
    LeaseTerminated,
    ViewingRequested,
    ViewingStatusChanged,
)

from rental_manager.domain.entities import Application, House, Lease, Viewing
from rental_manager.domain.errors import InvalidValue, RuleViolation
from rental_manager.domain.model import (
    APPLICATION,
    LEASE,
    VIEWING,
    ApplicationStatus,
    BillStatus,
    HouseStatus,
    LeaseStatus,
    Party,
    PendingApplication,
    Period,
    Role,
    ViewingStatus,
    approval_outcome,
    available_from,
    lease_period,
    renewal_end,
    termination_end,
)
from rental_manager.service.access import load_house, load_scoped, manages, require
from rental_manager.service.billing import issue_bill
from rental_manager.service.commands import (
    ApplyForHouse,
    ChangeViewing,
    RejectApplication,
    RenewLease,
    RequestViewing,
    SignLease,
    TerminateLease,
    WithdrawApplication,
)
from rental_manager.service.errors import Forbidden, NotFound
from rental_manager.service.paging import Order, Window, paged
from rental_manager.service.read_models import ApplicationRecord, LeaseRecord, ViewingRecord
from rental_manager.service.schemas import Page
from rental_manager.service.unit import SYSTEM, Actor, UnitOfWork

# ---- viewings ------------------------------------------------------------------------------------------


def request_viewing(uow: UnitOfWork, actor: Actor | None, data: RequestViewing) -> ViewingRecord:
    """Ask, as a tenant, to view a listed house at a future time."""
    who = require(actor, Role.TENANT)
    house = load_house(uow, who, data.house_id)
    if house.status is not HouseStatus.LISTED:
        raise RuleViolation("house_not_listed", "only listed houses can be viewed")
    if data.scheduled_at <= uow.now:
        raise InvalidValue("scheduled_at", "a viewing must be in the future")
    viewing = Viewing(
        id=uuid.uuid4(),
        house_id=house.id,
        tenant_id=who.id,
        scheduled_at=data.scheduled_at,
        note=data.note,
        status=ViewingStatus.REQUESTED,
        created_at=uow.now,
        updated_at=uow.now,
    )
    uow.viewings.add(viewing)
    uow.emit(
        ViewingRequested(viewing_id=viewing.id, house_id=house.id, tenant_id=who.id, scheduled_at=data.scheduled_at),
        key=house.id,
    )
    return ViewingRecord.model_validate(viewing)


def change_viewing(uow: UnitOfWork, actor: Actor | None, data: ChangeViewing) -> ViewingRecord:
    """Confirm, decline or complete (the landlord) or cancel (either side) a viewing."""
    viewing = load_scoped(actor, uow.viewings, data.viewing_id, "viewing", lock=True)
    target = data.status
    who = require(actor)
    current = viewing.status
    VIEWING.check(current, target, who.party)
    viewing.status = target
    viewing.updated_at = uow.now
    uow.emit(
        ViewingStatusChanged(
            viewing_id=viewing.id, house_id=viewing.house_id, from_status=current.value, to_status=target.value
        ),
        key=viewing.house_id,
    )
    return ViewingRecord.model_validate(viewing)


def list_viewings(
    uow: UnitOfWork, actor: Actor | None, house_id: uuid.UUID | None = None, page: int = 1, page_size: int = 50
) -> Page[ViewingRecord]:
    """Viewings the caller may see."""
    window = Window(page, page_size)
    found = uow.viewings.listed(require(actor), {"house_id": house_id}, Order("scheduled_at"), window)
    return paged(found, ViewingRecord, window)


# ---- applications ----------------------------------------------------------------------------------------


def submit_application(uow: UnitOfWork, actor: Actor | None, data: ApplyForHouse) -> ApplicationRecord:
    """Apply, as a tenant, to rent a listed house for dates no lease already holds."""
    who = require(actor, Role.TENANT)
    house = load_house(uow, who, data.house_id, lock=True)
    if house.status is not HouseStatus.LISTED:
        raise RuleViolation("house_not_listed", "only listed houses take applications")
    period = lease_period(data.start_date, data.end_date)
    if data.start_date < uow.today:
        raise InvalidValue("start_date", "a lease cannot start in the past")
    approval_outcome(period, uow.leases.periods(house.id), [])
    application = Application(
        id=uuid.uuid4(),
        house_id=house.id,
        tenant_id=who.id,
        start_date=period.start,
        end_date=period.end,
        message=data.message,
        status=ApplicationStatus.PENDING,
        created_at=uow.now,
    )
    uow.applications.add(application)
    uow.emit(
        ApplicationSubmitted(
            application_id=application.id,
            house_id=house.id,
            tenant_id=who.id,
            start_date=period.start,
            end_date=period.end,
        ),
        key=house.id,
    )
    return _application(uow, application)


def _application(uow: UnitOfWork, application: Application) -> ApplicationRecord:
    lease_id = uow.leases.of_application(application.id)
    return ApplicationRecord.model_validate(application).model_copy(update={"lease_id": lease_id})


def get_application(uow: UnitOfWork, actor: Actor | None, application_id: uuid.UUID) -> ApplicationRecord:
    """An application the caller may see."""
    return _application(uow, load_scoped(actor, uow.applications, application_id, "application"))


def list_applications(
    uow: UnitOfWork,
    actor: Actor | None,
    status: ApplicationStatus | None = None,
    house_id: uuid.UUID | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[ApplicationRecord]:
    """Applications the caller may see: a tenant's own, those on a landlord's houses, or all."""
    window = Window(page, page_size)
    where = {"status": status, "house_id": house_id}
    result = paged(
        uow.applications.listed(require(actor), where, Order("created_at"), window), ApplicationRecord, window
    )
    leases = uow.leases.of_applications([a.id for a in result.items if a.status is ApplicationStatus.APPROVED])
    result.items = [a.model_copy(update={"lease_id": leases.get(a.id)}) for a in result.items]
    return result


def _decidable(uow: UnitOfWork, actor: Actor | None, application_id: uuid.UUID) -> tuple[Actor, House, Application]:
    """Lock the house, then re-read the application under that lock; only its landlord (or an admin) decides."""
    who = require(actor)
    seen = load_scoped(who, uow.applications, application_id, "application")
    house = load_house(uow, who, seen.house_id, lock=True) if who.role is not Role.TENANT else None
    if house is None or not manages(who, house):
        raise Forbidden("only the house's landlord or an admin decides on applications")
    application = load_scoped(who, uow.applications, application_id, "application", lock=True)
    return who, house, application


def approve_application(uow: UnitOfWork, actor: Actor | None, decision: SignLease) -> ApplicationRecord:
    """Approve: sign the lease and, in the same transaction, reject every pending application it overlaps."""
    who, house, application = _decidable(uow, actor, decision.application_id)
    APPLICATION.check(application.status, ApplicationStatus.APPROVED, who.party)
    if house.status is HouseStatus.ARCHIVED:
        raise RuleViolation("house_archived", "an archived house takes no new leases")
    period = Period(application.start_date, application.end_date)
    others = _pending_on(uow, house.id, application.id)
    displaced = set(
        approval_outcome(
            period,
            uow.leases.periods(house.id),
            [PendingApplication(str(o.id), Period(o.start_date, o.end_date)) for o in others],
        )
    )
    application.status = ApplicationStatus.APPROVED
    application.decided_at, application.decided_by = uow.now, who.id
    application.decision_reason = decision.reason or None
    lease = _sign_lease(uow, house, application, period)
    _reject_displaced(uow, who, house, [o for o in others if str(o.id) in displaced])
    if lease.deposit_cents > 0:
        start = Period(lease.start_date, lease.start_date)
        issue_bill(uow, lease, "deposit", start, lease.start_date, lease.deposit_cents)
    _refresh_availability(uow, house)
    return _application(uow, application)


def _sign_lease(uow: UnitOfWork, house: House, application: Application, period: Period) -> Lease:
    """Write the lease an approved application becomes, on the house's terms, and announce it."""
    lease = Lease(
        id=uuid.uuid4(),
        house_id=house.id,
        tenant_id=application.tenant_id,
        landlord_id=house.landlord_id,
        application_id=application.id,
        start_date=period.start,
        end_date=period.end,
        original_end_date=period.end,
        monthly_rent_cents=house.monthly_rent_cents,
        deposit_cents=house.deposit_cents,
        due_day=uow.terms.due_day,
        grace_days=uow.terms.grace_days,
        late_fee_flat_cents=uow.terms.late_fee_flat_cents,
        late_fee_percent_bps=uow.terms.late_fee_percent_bps,
        late_fee_cap_cents=uow.terms.late_fee_cap_cents,
        status=LeaseStatus.ACTIVE,
        renewals=0,
        created_at=uow.now,
        updated_at=uow.now,
    )
    uow.leases.add(lease)
    uow.emit(
        ApplicationApproved(
            application_id=application.id, house_id=house.id, tenant_id=application.tenant_id, lease_id=lease.id
        ),
        key=house.id,
    )
    uow.emit(
        LeaseSigned(
            lease_id=lease.id,
            house_id=house.id,
            tenant_id=lease.tenant_id,
            landlord_id=lease.landlord_id,
            start_date=lease.start_date,
            end_date=lease.end_date,
            monthly_rent_cents=lease.monthly_rent_cents,
            deposit_cents=lease.deposit_cents,
        ),
        key=house.id,
    )
    return lease


def _reject_displaced(uow: UnitOfWork, who: Actor, house: House, displaced: list[Application]) -> None:
    """Turn down pending applications whose dates a lease (new or renewed) now holds."""
    for other in displaced:
        APPLICATION.check(other.status, ApplicationStatus.REJECTED, Party.SYSTEM)
        other.status = ApplicationStatus.REJECTED
        other.decided_at, other.decided_by = uow.now, who.id
        other.decision_reason = "the house was let for overlapping dates"
        uow.emit(
            ApplicationRejected(
                application_id=other.id,
                house_id=house.id,
                tenant_id=other.tenant_id,
                reason=other.decision_reason,
                automatic=True,
            ),
            key=house.id,
        )


def _pending_on(uow: UnitOfWork, house_id: uuid.UUID, exclude: uuid.UUID | None = None) -> list[Application]:
    """The house's pending applications, locked."""
    return uow.applications.pending_on(house_id, exclude)


def reject_application(uow: UnitOfWork, actor: Actor | None, decision: RejectApplication) -> ApplicationRecord:
    """Turn an application down."""
    who, house, application = _decidable(uow, actor, decision.application_id)
    APPLICATION.check(application.status, ApplicationStatus.REJECTED, who.party)
    application.status = ApplicationStatus.REJECTED
    application.decided_at, application.decided_by = uow.now, who.id
    application.decision_reason = decision.reason or "declined by the landlord"
    uow.emit(
        ApplicationRejected(
            application_id=application.id,
            house_id=house.id,
            tenant_id=application.tenant_id,
            reason=application.decision_reason,
        ),
        key=house.id,
    )
    return _application(uow, application)


def withdraw_application(uow: UnitOfWork, actor: Actor | None, data: WithdrawApplication) -> ApplicationRecord:
    """Withdraw, as its tenant, a pending application."""
    application = load_scoped(actor, uow.applications, data.application_id, "application", lock=True)
    who = require(actor)
    if who.id != application.tenant_id:
        raise Forbidden("only the applicant withdraws an application")
    APPLICATION.check(application.status, ApplicationStatus.WITHDRAWN, who.party)
    application.status = ApplicationStatus.WITHDRAWN
    application.decided_at = uow.now
    uow.emit(
        ApplicationWithdrawn(
            application_id=application.id, house_id=application.house_id, tenant_id=application.tenant_id
        ),
        key=application.house_id,
    )
    return _application(uow, application)


# ---- leases ----------------------------------------------------------------------------------------------


def _refresh_availability(uow: UnitOfWork, house: House) -> None:
    house.available_from = available_from(house.listed_available_from, uow.leases.active_ends(house.id))


def get_lease(uow: UnitOfWork, actor: Actor | None, lease_id: uuid.UUID) -> LeaseRecord:
    """A lease the caller may see."""
    return LeaseRecord.model_validate(load_scoped(actor, uow.leases, lease_id, "lease"))


def list_leases(
    uow: UnitOfWork,
    actor: Actor | None,
    status: LeaseStatus | None = None,
    house_id: uuid.UUID | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[LeaseRecord]:
    """Leases the caller may see."""
    window = Window(page, page_size)
    found = uow.leases.listed(require(actor), {"status": status, "house_id": house_id}, Order("start_date"), window)
    return paged(found, LeaseRecord, window)


def _lease_for_change(uow: UnitOfWork, actor: Actor | None, lease_id: uuid.UUID) -> tuple[Actor, House, Lease]:
    who = require(actor)
    seen = load_scoped(who, uow.leases, lease_id, "lease")
    # The house first, then the lease, both re-read under their locks: the order every change of a house takes.
    house = uow.houses.get(seen.house_id, lock=True)
    lease = uow.leases.get(SYSTEM, lease_id, lock=True)
    if house is None or lease is None:
        raise NotFound("lease", lease_id)
    return who, house, lease


def renew_lease(uow: UnitOfWork, actor: Actor | None, data: RenewLease) -> LeaseRecord:
    """Extend a lease (its landlord or an admin), if no other lease of the house is in the way."""
    who, house, lease = _lease_for_change(uow, actor, data.lease_id)
    if who.role is Role.TENANT:
        raise Forbidden("the landlord renews a lease")
    LEASE.check(lease.status, LeaseStatus.ACTIVE, who.party)
    previous = lease.end_date
    renewed = renewal_end(
        Period(lease.start_date, lease.end_date), data.end_date, uow.leases.periods(house.id, lease.id)
    )
    lease.end_date = renewed.end
    lease.renewals += 1
    _reject_displaced(
        uow, who, house, [a for a in _pending_on(uow, house.id) if Period(a.start_date, a.end_date).overlaps(renewed)]
    )
    lease.updated_at = uow.now
    uow.emit(
        LeaseRenewed(lease_id=lease.id, house_id=house.id, previous_end_date=previous, end_date=renewed.end),
        key=house.id,
    )
    _refresh_availability(uow, house)
    return LeaseRecord.model_validate(lease)


def terminate_lease(uow: UnitOfWork, actor: Actor | None, data: TerminateLease) -> LeaseRecord:
    """End a lease early (either side); unpaid bills for months after its new last day are cancelled."""
    who, house, lease = _lease_for_change(uow, actor, data.lease_id)
    LEASE.check(lease.status, LeaseStatus.TERMINATED, who.party)
    previous = lease.end_date
    if data.end_date < uow.today - timedelta(days=1) and not who.is_admin:
        raise InvalidValue("end_date", "only an admin may end a lease in the past")
    last_day = termination_end(Period(lease.start_date, lease.end_date), data.end_date)
    lease.end_date = last_day
    lease.status = LeaseStatus.TERMINATED
    lease.termination_reason = data.reason
    lease.terminated_at = uow.now
    lease.updated_at = uow.now
    uow.emit(
        LeaseTerminated(
            lease_id=lease.id, house_id=house.id, previous_end_date=previous, end_date=last_day, reason=data.reason
        ),
        key=house.id,
    )
    _cancel_bills_after(uow, lease, last_day)
    _refresh_availability(uow, house)
    return LeaseRecord.model_validate(lease)


def _cancel_bills_after(uow: UnitOfWork, lease: Lease, last_day: date) -> None:
    for bill in uow.bills.rent_after(lease.id, last_day):
        state = bill.state
        if state.paid_cents > 0 or state.status is not BillStatus.ISSUED:
            continue  # money already moved: settled outside the system, the bill stays as a record
        bill.status = state.cancel().status
        bill.cancelled_at = uow.now
        uow.emit(
            BillCancelled(bill_id=bill.id, lease_id=lease.id, house_id=lease.house_id, reason="lease terminated"),
            key=lease.house_id,
        )
