"""The service layer's entry point: `RentalService.run(handler, actor, ...)` runs one handler in one transaction.

The API, the web UI and the command worker all go through it: handlers (functions in this package taking a
UnitOfWork first) hold the rules; `run` opens the transaction through the unit-of-work port (state and outbox
rows commit together) and reruns it when it lost a race with a concurrent one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from rental_manager.domain.model import Role
from rental_manager.service import billing, houses, users
from rental_manager.service.access import require
from rental_manager.service.errors import TryAgain, Unauthorized
from rental_manager.service.read_models import HouseSummary
from rental_manager.service.schemas import BillingReport, HouseQuery, Page, Token
from rental_manager.service.search import SearchCache
from rental_manager.service.unit import Actor, LeaseTerms, RentalTopics, UnitOfWork, UnitOfWorkFactory
from rental_manager.settings import RentalSettings

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

BATCH = 100


def utc_today() -> date:
    """Today in UTC (the service's business day)."""
    return datetime.now(UTC).date()


class LoginGuard(Protocol):
    """Counts failed sign-ins and refuses (TooManyAttempts) an account or address with too many lately."""

    def check(self, account: str, address: str) -> None:
        """Raise TooManyAttempts if either has used up its failures."""

    def failed(self, account: str, address: str) -> None:
        """Count a failure against both."""

    def succeeded(self, account: str) -> None:
        """Forget the account's failures."""


class RentalService:
    """Runs handlers in transactions, and owns the parts that span several (search cache, billing run)."""

    def __init__(
        self,
        settings: RentalSettings,
        credentials: users.Credentials,
        search_cache: SearchCache | None = None,
        *,
        unit_of_work: UnitOfWorkFactory,
        login_guard: LoginGuard | None = None,
        today: Callable[[], date] = utc_today,
        on_commit: Callable[[], None] | None = None,
        attempts: int = 3,
    ) -> None:
        self.unit_of_work = unit_of_work
        self.settings = settings
        self.credentials = credentials
        self.search_cache = search_cache
        self.login_guard = login_guard
        self.topics = RentalTopics.of(settings.topic_prefix)
        self.today = today
        self.terms = LeaseTerms(
            due_day=settings.due_day,
            grace_days=settings.grace_days,
            late_fee_flat_cents=settings.late_fee_flat_cents,
            late_fee_percent_bps=settings.late_fee_percent_bps,
            late_fee_cap_cents=settings.late_fee_cap_cents,
        )
        self.on_commit = on_commit
        self._attempts = attempts

    def run(self, fn: Callable[Concatenate[UnitOfWork, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run `fn(uow, *args)` in one transaction and commit; state and events land together or not at all."""
        for attempt in range(1, self._attempts + 1):
            try:
                with self.unit_of_work(self.topics, self.today(), self.terms) as uow:
                    result = fn(uow, *args, **kwargs)
                if uow.emitted and self.on_commit is not None:
                    self.on_commit()
                return result
            except TryAgain as exc:
                if attempt == self._attempts:
                    raise exc.original from exc
                log.info("transaction retried", extra={"reason": str(exc.original)[:200], "attempt": attempt})
                time.sleep(0.01 * attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    # ---- operations spanning more than one transaction, or none ----------------------------------------

    def cached_search(self, query: HouseQuery) -> bytes | None:
        """The cached page for the query, or None (a miss, or Redis unavailable); never touches the database."""
        return self.search_cache.lookup(query.cache_key())[1] if self.search_cache is not None else None

    def search_json(self, query: HouseQuery) -> bytes:
        """A search page as JSON, cache-aside: from Redis when cached, else the database (then cached)."""
        cache = self.search_cache
        key = query.cache_key()
        generation, hit = cache.lookup(key) if cache is not None else (None, None)
        if hit is not None:
            return hit
        body = self.run(houses.search_houses, query).model_dump_json().encode()
        if cache is not None and generation is not None:
            cache.put(generation, key, body)
        return body

    def search(self, query: HouseQuery) -> Page[HouseSummary]:
        """Search listed houses (cached as in `search_json`)."""
        return Page[HouseSummary].model_validate_json(self.search_json(query))

    def login(self, email: str, password: str, address: str = "") -> Token:
        """A bearer token for valid credentials (Unauthorized otherwise; TooManyAttempts after many failures)."""
        guard, account = self.login_guard, users.normalise_email(email)
        if guard is not None:
            # Checked before the password: once throttled, even the right password gets no answer about itself.
            guard.check(account, address)
        try:
            token = self.run(users.login, self.credentials, email, password)
        except Unauthorized:
            if guard is not None:
                guard.failed(account, address)
            raise
        if guard is not None:
            guard.succeeded(account)
        return Token(access_token=token, expires_in=self.credentials.token_ttl_s)

    def actor(self, token: str) -> Actor:
        """The actor a bearer token stands for (Unauthorized if the token or the account does not hold)."""
        subject = self.credentials.subject(token)
        return self.run(users.actor_for, subject)

    def run_billing(self, actor: Actor | None, as_of: date | None = None) -> BillingReport:
        """Issue due rent bills, end leases past their last day, then mark arrears overdue, as of a day (admins)."""
        require(actor, Role.ADMIN)
        day = as_of or self.today()
        issued = ended = overdue = 0
        lease_ids = self.run(billing.leases_to_bill, day)
        for i in range(0, len(lease_ids), BATCH):
            n_issued, n_ended = self.run(billing.bill_leases, lease_ids[i : i + BATCH], day)
            issued, ended = issued + n_issued, ended + n_ended
        bill_ids = self.run(billing.bills_to_check, day)
        for i in range(0, len(bill_ids), BATCH):
            overdue += self.run(billing.mark_overdue, bill_ids[i : i + BATCH], day)
        report = BillingReport(as_of=day, bills_issued=issued, bills_overdue=overdue, leases_ended=ended)
        log.info("billing run", extra=report.model_dump(mode="json"))
        return report
