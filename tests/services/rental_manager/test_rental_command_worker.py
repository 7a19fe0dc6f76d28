"""The command worker's whole path on the in-memory unit of work, without PostgreSQL or Kafka: a Kafka command
message, its envelope id claimed in the inbox, the service command built from it, the handler the API and the web
UI run, and the events it leaves in the outbox (or the CommandRejected event that answers a refused command).

The same path on real PostgreSQL and Kafka stays in test_rental_messaging.py."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import cast

import pytest
from kafka.consumer.fetcher import ConsumerRecord
from pydantic import BaseModel
from quartet_contracts.envelope import Envelope
from quartet_contracts.schemas import rental as msg
from quartet_shared.consumer import Context
from rental_manager.domain.entities import Application
from rental_manager.domain.model import ApplicationStatus, BillStatus
from rental_manager.entrypoints.worker import CommandHandler

from tests.services.rental_manager.fakes import NOW, TODAY, FakeTransactions, LetHouse


class World(LetHouse):
    """The let house, and the command worker on the fake store."""

    def __init__(self) -> None:
        super().__init__()
        self.handler = CommandHandler(FakeTransactions(self.store, TODAY))

    def deliver(self, command: BaseModel, command_id: str | None = None) -> str:
        """Hand the message to the worker as the runner does, in an envelope; returns its id."""
        envelope = Envelope.of(command, source="/tests/commands", id=command_id)
        context = Context(
            envelope, cast(ConsumerRecord, None), 1, threading.Event(), lambda _t, _e: None, lambda _cb: None
        )
        self.handler.handle(command, context)
        return envelope.id


@pytest.fixture
def world() -> World:
    return World()


def test_a_payment_runs_once_however_often_its_message_is_delivered(world: World) -> None:
    pay = msg.PayBill(tenant_id=world.tenant.id, bill_id=world.bill.id, amount_cents=40_000)
    command_id = world.deliver(pay)
    world.deliver(pay, command_id)
    assert [(p.amount_cents, p.recorded_by) for p in world.store.bills.payments] == [(40_000, world.tenant.id)]
    assert (world.bill.status, world.bill.paid_cents) == (BillStatus.PARTIALLY_PAID, 40_000)
    assert world.events() == [("PaymentRecorded", str(world.house.id))]
    assert world.store.claimed == {("rental-manager-commands", command_id)}


def test_an_application_is_stored_and_announced(world: World) -> None:
    start = TODAY + timedelta(days=60)
    world.deliver(
        msg.SubmitApplication(
            tenant_id=world.tenant.id, house_id=world.house.id, start_date=start, end_date=start + timedelta(days=90)
        )
    )
    [application] = world.store.applications.rows.values()
    assert (application.tenant_id, application.status, application.start_date) == (
        world.tenant.id,
        ApplicationStatus.PENDING,
        start,
    )
    assert world.events() == [("ApplicationSubmitted", str(world.house.id))]


def test_an_application_overlapping_a_lease_is_answered_with_a_rejection(world: World) -> None:
    command_id = world.deliver(
        msg.SubmitApplication(
            tenant_id=world.tenant.id, house_id=world.house.id, start_date=TODAY, end_date=TODAY + timedelta(days=9)
        )
    )
    assert world.store.applications.rows == {}
    [(event, key)] = world.store.outbox
    assert isinstance(event, msg.CommandRejected)
    assert (event.command_id, event.status, event.field, key) == (command_id, 409, "start_date", str(world.house.id))


def test_withdrawing_a_pending_application(world: World) -> None:
    application = Application(
        id=uuid.uuid4(),
        house_id=world.house.id,
        tenant_id=world.tenant.id,
        start_date=TODAY + timedelta(days=60),
        end_date=TODAY + timedelta(days=90),
        message="",
        status=ApplicationStatus.PENDING,
        created_at=NOW - timedelta(days=1),
    )
    world.store.applications.add(application)
    world.deliver(msg.WithdrawApplication(tenant_id=world.tenant.id, application_id=application.id))
    assert (application.status, application.decided_at) == (ApplicationStatus.WITHDRAWN, NOW)
    assert world.events() == [("ApplicationWithdrawn", str(world.house.id))]


def test_a_viewing_and_a_repair_request(world: World) -> None:
    when = NOW + timedelta(days=2)
    world.deliver(msg.RequestViewing(tenant_id=world.tenant.id, house_id=world.house.id, scheduled_at=when))
    world.deliver(msg.RequestMaintenance(tenant_id=world.tenant.id, house_id=world.house.id, title="Leaking tap"))
    [viewing] = world.store.viewings.rows.values()
    assert (viewing.scheduled_at, viewing.tenant_id) == (when, world.tenant.id)
    [repair] = world.store.repairs.rows.values()
    assert (repair.lease_id, repair.title) == (world.lease.id, "Leaking tap")
    assert [(s.request_id, s.to_status) for s in world.store.repairs.steps] == [(repair.id, "open")]
    key = str(world.house.id)
    assert world.events() == [("ViewingRequested", key), ("MaintenanceRequested", key)]


def test_a_refused_payment_changes_nothing_and_is_answered_once(world: World) -> None:
    too_much = msg.PayBill(tenant_id=world.tenant.id, bill_id=world.bill.id, amount_cents=100_001)
    command_id = world.deliver(too_much)
    world.deliver(too_much, command_id)
    assert (world.store.bills.payments, world.bill.paid_cents) == ([], 0)
    [(event, key)] = world.store.outbox
    assert isinstance(event, msg.CommandRejected)
    assert (event.command_id, event.command_type, event.status) == (command_id, "quartet.rental.PayBill.v1", 409)
    assert key == str(world.house.id)


def test_who_may_not_act_or_what_breaks_a_rule_is_answered_with_its_status(world: World) -> None:
    stranger = uuid.uuid4()
    world.deliver(msg.PayBill(tenant_id=stranger, bill_id=world.bill.id, amount_cents=100))
    world.deliver(
        msg.SubmitApplication(
            tenant_id=world.tenant.id,
            house_id=world.house.id,
            start_date=TODAY - timedelta(days=400),
            end_date=TODAY - timedelta(days=300),
        )
    )
    world.deliver(msg.RequestViewing(tenant_id=world.landlord.id, house_id=world.house.id, scheduled_at=NOW))
    answers = [(e.status, e.field) for e, _ in world.store.outbox if isinstance(e, msg.CommandRejected)]
    assert answers == [(404, None), (422, "start_date"), (404, None)]
    assert len(world.store.outbox) == 3
