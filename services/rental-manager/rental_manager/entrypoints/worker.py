"""The rental worker: commands from `rental.commands` through an inbox, the search-cache invalidator on
`rental.events`, and the periodic billing run.

A command is applied in one database transaction that first claims its `ce_id` in the inbox table: a
redelivered command finds its id claimed and changes nothing. A command the rules refuse is answered with a
CommandRejected event (claimed the same way), not dead-lettered: it was well-formed, just not allowed.
Records that are not valid commands at all go to `rental.commands.dlq` through the kernel's runner.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import date
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from pydantic import BaseModel, ValidationError
from quartet_contracts.registry import ce_type_of
from quartet_contracts.schemas import rental as msg
from quartet_shared.cache import ResilientRedis
from quartet_shared.clients import KAFKA, KafkaClients
from quartet_shared.consumer import ConsumerRunner, Context, Mode, PermanentError, Subscription

from rental_manager.domain.errors import DomainError, ForbiddenMove, InvalidValue, RuleViolation
from rental_manager.domain.model import Role
from rental_manager.service import billing, maintenance, rentals
from rental_manager.service.commands import (
    ApplyForHouse,
    Command,
    PayBill,
    RequestMaintenance,
    RequestViewing,
    WithdrawApplication,
)
from rental_manager.service.errors import Forbidden, NotFound, ServiceError, Unauthorized
from rental_manager.service.facade import RentalService
from rental_manager.service.search import SearchCache
from rental_manager.service.unit import SYSTEM, Actor, UnitOfWork
from rental_manager.settings import RentalSettings

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

COMMANDS_GROUP = "rental-manager-commands"
CACHE_GROUP = "rental-manager-search-cache"

# Events after which a cached search page may be wrong.
SEARCH_EVENTS = frozenset(
    ce_type_of(m)
    for m in (
        msg.HouseListed,
        msg.HouseUpdated,
        msg.HouseUnlisted,
        msg.HouseArchived,
        msg.LeaseSigned,
        msg.LeaseRenewed,
        msg.LeaseTerminated,
        msg.LeaseEnded,
    )
)


def _status_of(exc: Exception) -> tuple[int, str | None]:
    if isinstance(exc, InvalidValue):
        return 422, exc.field
    if isinstance(exc, NotFound):
        return 404, None
    if isinstance(exc, Forbidden | Unauthorized | ForbiddenMove):
        return 403, None
    return 409, None


def _tenant(uow: UnitOfWork, tenant_id: Any) -> Actor:
    user = uow.users.get(tenant_id)
    if user is None or not user.active or user.role is not Role.TENANT:
        raise NotFound("tenant", tenant_id)
    return Actor(user.id, user.role)


# The handler of each command a Kafka message can carry.
HANDLERS: dict[type[Command], Callable[[UnitOfWork, Actor, Any], object]] = {
    ApplyForHouse: rentals.submit_application,
    WithdrawApplication: rentals.withdraw_application,
    RequestViewing: rentals.request_viewing,
    RequestMaintenance: maintenance.request_maintenance,
    PayBill: billing.record_payment,
}


def to_command(message: BaseModel) -> Command:
    """The service command a Kafka command message stands for (ValidationError if a value breaks its rules)."""
    if isinstance(message, msg.SubmitApplication):
        return ApplyForHouse.model_validate(message, from_attributes=True)
    if isinstance(message, msg.WithdrawApplication):
        return WithdrawApplication(application_id=message.application_id)
    if isinstance(message, msg.RequestViewing):
        return RequestViewing.model_validate(message, from_attributes=True)
    if isinstance(message, msg.RequestMaintenance):
        return RequestMaintenance.model_validate(message, from_attributes=True)
    if isinstance(message, msg.PayBill):
        return PayBill.model_validate(message, from_attributes=True)
    raise PermanentError(f"{type(message).__name__} is not a rental command")


def dispatch(uow: UnitOfWork, actor: Actor, message: BaseModel) -> None:
    """Carry out a command message as `actor` through the handler the API and the web UI use for it."""
    try:
        command = to_command(message)
        HANDLERS[type(command)](uow, actor, command)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidValue(".".join(str(p) for p in first["loc"]) or "body", first["msg"]) from exc


def apply_command(uow: UnitOfWork, command: BaseModel) -> None:
    """Carry out one command as the tenant it names."""
    if not isinstance(command, msg.RENTAL_COMMANDS):
        raise PermanentError(f"{type(command).__name__} is not a rental command")
    dispatch(uow, _tenant(uow, command.tenant_id), command)


def _house_key(uow: UnitOfWork, command: BaseModel) -> str | None:
    house = getattr(command, "house_id", None)
    if house is not None:
        return str(house)
    if isinstance(command, msg.PayBill):
        bill = uow.bills.get(SYSTEM, command.bill_id)
        return str(bill.house_id) if bill is not None else None
    return None


class Transactions(Protocol):
    """What the command handler needs of the service: run a handler in one transaction (`RentalService.run`)."""

    def run(self, fn: Callable[Concatenate[UnitOfWork, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run `fn(uow, *args)` in one transaction and commit."""


class CommandHandler:
    """Applies commands exactly once per `ce_id`, with the inbox claim inside the command's transaction."""

    def __init__(self, service: Transactions, consumer: str = COMMANDS_GROUP) -> None:
        self._service = service
        self._consumer = consumer

    def handle(self, command: BaseModel, ctx: Context) -> None:
        """The runner's handler: apply, or record the rejection; a redelivery does neither twice."""
        command_id = ctx.envelope.id
        try:
            self._service.run(self._apply, command_id, command)
        except (DomainError, ServiceError) as exc:
            log.info("command rejected", extra={"command_id": command_id, "reason": str(exc)})
            self._service.run(self._reject, command_id, command, exc)

    def _apply(self, uow: UnitOfWork, command_id: str, command: BaseModel) -> None:
        if uow.inbox.claim(self._consumer, command_id):
            apply_command(uow, command)

    def _reject(self, uow: UnitOfWork, command_id: str, command: BaseModel, exc: Exception) -> None:
        if not uow.inbox.claim(self._consumer, command_id):
            return
        status, field = _status_of(exc)
        if isinstance(exc, RuleViolation) and exc.rule == "lease_overlap":
            field = field or "start_date"
        event = msg.CommandRejected(
            command_id=command_id, command_type=ce_type_of(command), status=status, reason=str(exc), field=field
        )
        uow.emit(event, key=_house_key(uow, command) or command_id, subject=command_id)


def command_runner(service: RentalService, settings: RentalSettings, redis: ResilientRedis | None) -> ConsumerRunner:
    """The runner consuming `rental.commands` (at least once; the inbox makes the effect once)."""
    handler = CommandHandler(service)
    return ConsumerRunner(
        settings,
        COMMANDS_GROUP,
        [Subscription(service.topics.commands, handler.handle)],
        mode=Mode.AT_LEAST_ONCE,
        source=f"/quartet/{settings.service_name}",
        redis=redis,
    )


def cache_runner(
    cache: SearchCache, service: RentalService, settings: RentalSettings, *, clients: KafkaClients = KAFKA
) -> ConsumerRunner:
    """The runner that invalidates cached searches when a rental event could change their answer."""

    def invalidate(_event: BaseModel, ctx: Context) -> None:
        if ctx.envelope.type in SEARCH_EVENTS:
            cache.invalidate()

    # No dedup cache: invalidating twice is harmless, and a skipped duplicate would save one INCR.
    return ConsumerRunner(
        settings,
        CACHE_GROUP,
        [Subscription(service.topics.events, invalidate, retry=False)],
        mode=Mode.AT_LEAST_ONCE,
        source=f"/quartet/{settings.service_name}",
        clients=clients,
    )


class BillingScheduler:
    """Runs the billing job at start and then every `interval_s` (idempotent, so overlap is harmless)."""

    def __init__(self, run: Callable[[date | None], Any], interval_s: float) -> None:
        self._run = run
        self._interval_s = interval_s
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def loop(self) -> None:
        """Run until stopped."""
        while not self.stopping.is_set():
            try:
                self._run(None)
            except Exception:
                log.exception("billing run failed; next attempt at the next interval")
            self.stopping.wait(self._interval_s)

    def start(self) -> None:
        """Run in a daemon thread."""
        self._thread = threading.Thread(target=self.loop, name="billing", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after the current run."""
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
