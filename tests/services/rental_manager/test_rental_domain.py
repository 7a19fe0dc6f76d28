"""The rental domain's state machines and date rules, and that the domain imports no I/O."""

from __future__ import annotations

import ast
from datetime import date
from pathlib import Path

import pytest
import rental_manager.domain
from rental_manager.domain.errors import ForbiddenMove, InvalidTransition, InvalidValue, RuleViolation
from rental_manager.domain.model import (
    APPLICATION,
    HOUSE,
    LEASE,
    MAINTENANCE,
    VIEWING,
    ApplicationStatus,
    HouseStatus,
    LeaseStatus,
    MaintenanceStatus,
    Party,
    PendingApplication,
    Period,
    ViewingStatus,
    approval_outcome,
    available_from,
    lease_period,
    renewal_end,
    tenant_may_review,
    termination_end,
)

T, L, SYS = Party.TENANT, Party.LANDLORD, Party.SYSTEM


def p(a: str, b: str) -> Period:
    return Period(date.fromisoformat(a), date.fromisoformat(b))


def test_no_approving_a_withdrawn_or_decided_application() -> None:
    APPLICATION.check(ApplicationStatus.PENDING, ApplicationStatus.APPROVED, L)
    for done in (ApplicationStatus.WITHDRAWN, ApplicationStatus.REJECTED, ApplicationStatus.APPROVED):
        with pytest.raises(InvalidTransition) as err:
            APPLICATION.check(done, ApplicationStatus.APPROVED, L)
        assert (err.value.current, err.value.target) == (done.value, "approved")


def test_each_side_makes_only_its_own_moves() -> None:
    with pytest.raises(ForbiddenMove, match="tenant cannot"):
        APPLICATION.check(ApplicationStatus.PENDING, ApplicationStatus.APPROVED, T)
    with pytest.raises(ForbiddenMove, match="landlord cannot"):
        APPLICATION.check(ApplicationStatus.PENDING, ApplicationStatus.WITHDRAWN, L)
    with pytest.raises(ForbiddenMove):
        VIEWING.check(ViewingStatus.REQUESTED, ViewingStatus.CONFIRMED, T)
    VIEWING.check(ViewingStatus.CONFIRMED, ViewingStatus.CANCELLED, T)
    with pytest.raises(ForbiddenMove):
        LEASE.check(LeaseStatus.ACTIVE, LeaseStatus.ENDED, L)  # only the billing run ends a lease
    LEASE.check(LeaseStatus.ACTIVE, LeaseStatus.ENDED, SYS)
    with pytest.raises(InvalidTransition):
        LEASE.check(LeaseStatus.TERMINATED, LeaseStatus.ACTIVE, L)  # no renewing a terminated lease


def test_the_maintenance_flow() -> None:
    M = MaintenanceStatus
    path = [(M.OPEN, M.ACKNOWLEDGED, L), (M.ACKNOWLEDGED, M.IN_PROGRESS, L), (M.IN_PROGRESS, M.RESOLVED, L)]
    for current, target, party in path:
        MAINTENANCE.check(current, target, party)
    MAINTENANCE.check(M.RESOLVED, M.IN_PROGRESS, T)  # reopened by the tenant
    MAINTENANCE.check(M.RESOLVED, M.CLOSED, T)
    with pytest.raises(InvalidTransition):
        MAINTENANCE.check(M.OPEN, M.RESOLVED, L)  # no skipping the work
    with pytest.raises(ForbiddenMove):
        MAINTENANCE.check(M.IN_PROGRESS, M.RESOLVED, T)
    with pytest.raises(InvalidTransition):
        MAINTENANCE.check(M.CLOSED, M.IN_PROGRESS, T)
    assert MAINTENANCE.targets(M.OPEN, T) == ["cancelled"]
    assert MAINTENANCE.targets(M.OPEN, L) == ["acknowledged", "rejected"]


def test_archived_houses_are_final() -> None:
    HOUSE.check(HouseStatus.DRAFT, HouseStatus.LISTED, L)
    for target in HouseStatus:
        with pytest.raises(InvalidTransition):
            HOUSE.check(HouseStatus.ARCHIVED, target, L)


def test_periods_include_both_ends() -> None:
    assert p("2025-01-01", "2025-01-31").days == 31
    assert p("2025-01-01", "2025-01-31").overlaps(p("2025-01-31", "2025-02-10"))
    assert not p("2025-01-01", "2025-01-31").overlaps(p("2025-02-01", "2025-02-10"))
    with pytest.raises(InvalidValue):
        p("2025-02-01", "2025-01-31")
    with pytest.raises(InvalidValue):
        lease_period(date(2025, 1, 1), date(2040, 1, 1))


def test_approval_refuses_a_let_period_and_displaces_overlapping_pending_applications() -> None:
    leases = [p("2025-01-01", "2025-06-30")]
    with pytest.raises(RuleViolation) as err:
        approval_outcome(p("2025-06-30", "2025-12-31"), leases, [])
    assert err.value.rule == "lease_overlap"
    pending = [
        PendingApplication("a", p("2025-07-01", "2025-07-31")),
        PendingApplication("b", p("2026-01-01", "2026-12-31")),
        PendingApplication("c", p("2025-12-31", "2026-01-31")),
    ]
    assert approval_outcome(p("2025-07-01", "2025-12-31"), leases, pending) == ["a", "c"]


def test_renewal_extends_unless_another_lease_is_in_the_way() -> None:
    current = p("2025-01-01", "2025-06-30")
    assert renewal_end(current, date(2025, 12, 31), []).end == date(2025, 12, 31)
    with pytest.raises(InvalidValue):
        renewal_end(current, date(2025, 6, 30), [])
    with pytest.raises(RuleViolation):
        renewal_end(current, date(2025, 12, 31), [p("2025-10-01", "2026-01-31")])


def test_termination_shortens_or_empties_a_lease() -> None:
    current = p("2025-03-01", "2025-12-31")
    assert termination_end(current, date(2025, 5, 15)) == date(2025, 5, 15)
    assert termination_end(current, date(2025, 2, 28)) == date(2025, 2, 28)  # before the start: empty
    with pytest.raises(InvalidValue):
        termination_end(current, date(2025, 12, 31))
    with pytest.raises(InvalidValue):
        termination_end(current, date(2025, 2, 27))


def test_availability_follows_the_last_lease() -> None:
    assert available_from(date(2025, 1, 1), []) == date(2025, 1, 1)
    assert available_from(date(2025, 1, 1), [date(2025, 6, 30), date(2025, 3, 31)]) == date(2025, 7, 1)
    assert available_from(date(2026, 1, 1), [date(2025, 6, 30)]) == date(2026, 1, 1)


def test_only_tenants_of_a_lease_that_has_begun_may_review() -> None:
    today = date(2025, 6, 1)
    assert tenant_may_review([p("2024-01-01", "2024-12-31")], today)
    assert tenant_may_review([p("2025-05-01", "2025-12-31")], today)
    assert not tenant_may_review([p("2025-07-01", "2025-12-31")], today)
    assert not tenant_may_review([], today)


IO_MODULES = {"sqlalchemy", "fastapi", "kafka", "redis", "httpx", "requests", "socket", "os", "subprocess", "jwt"}


def test_the_domain_imports_no_io() -> None:
    root = Path(rental_manager.domain.__file__).parent
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in IO_MODULES, f"{path.name} imports {name}"
                if name.startswith("rental_manager"):
                    assert name.startswith("rental_manager.domain"), f"{path.name} imports {name}"
