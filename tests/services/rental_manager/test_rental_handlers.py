"""The billing handlers and the command worker's dispatch on the in-memory unit of work: no database, the
same handlers the API, the web UI and the command worker run."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from quartet_contracts.schemas import rental as msg
from quartet_contracts.schemas.rental import PaymentRecorded
from quartet_shared.consumer import PermanentError
from rental_manager.domain.entities import Bill
from rental_manager.domain.errors import InvalidValue, RuleViolation
from rental_manager.domain.model import BillStatus, Role
from rental_manager.entrypoints import worker
from rental_manager.service import billing
from rental_manager.service.commands import (
    ApplyForHouse,
    PayBill,
    RequestMaintenance,
    RequestViewing,
    WithdrawApplication,
)
from rental_manager.service.errors import NotFound
from rental_manager.service.unit import Actor

from tests.services.rental_manager.fakes import FakeBills, FakeStore, FakeUnitOfWork

TENANT = Actor(uuid.uuid4(), Role.TENANT)
OTHER_TENANT = Actor(uuid.uuid4(), Role.TENANT)
LANDLORD = Actor(uuid.uuid4(), Role.LANDLORD)
HOUSE = uuid.uuid4()
LEASE = uuid.uuid4()


def _bill(amount: int, status: BillStatus = BillStatus.ISSUED, day: int = 0, paid: int = 0) -> Bill:
    start = date(2026, 1, 1) + timedelta(days=day)
    return Bill(
        id=uuid.uuid4(),
        lease_id=LEASE,
        house_id=HOUSE,
        tenant_id=TENANT.id,
        kind="rent",
        period_start=start,
        period_end=start,
        due_date=start,
        amount_cents=amount,
        late_fee_cents=0,
        paid_cents=paid,
        status=status,
        issued_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


@pytest.fixture
def bills() -> FakeBills:
    return FakeBills({HOUSE: LANDLORD.id})


def _with(bills: FakeBills, *made: Bill) -> FakeUnitOfWork:
    for bill in made:
        bills.bills[bill.id] = bill
    return FakeUnitOfWork(FakeStore(bills))


def test_a_part_payment_is_recorded_and_announced(bills: FakeBills) -> None:
    bill = _bill(10_000)
    uow = _with(bills, bill)
    payment = billing.record_payment(uow, TENANT, PayBill(bill_id=bill.id, amount_cents=4_000, reference="r1"))
    assert (payment.amount_cents, payment.recorded_by, payment.house_id) == (4_000, TENANT.id, HOUSE)
    assert (bill.status, bill.paid_cents, bill.paid_at) == (BillStatus.PARTIALLY_PAID, 4_000, None)
    [(event, key)] = uow.events
    assert isinstance(event, PaymentRecorded)
    assert (event.outstanding_cents, event.bill_status, key) == (6_000, "partially_paid", str(HOUSE))


def test_paying_the_rest_settles_the_bill(bills: FakeBills) -> None:
    bill = _bill(10_000, BillStatus.PARTIALLY_PAID, paid=4_000)
    uow = _with(bills, bill)
    billing.record_payment(uow, LANDLORD, PayBill(bill_id=bill.id, amount_cents=6_000, method="cash"))
    assert (bill.status, bill.paid_at) == (BillStatus.PAID, uow.now)
    assert billing.payable_bills(uow, TENANT, [bill.id]) == set()


def test_the_same_reference_twice_records_one_payment(bills: FakeBills) -> None:
    bill = _bill(10_000)
    uow = _with(bills, bill)
    pay = PayBill(bill_id=bill.id, amount_cents=1_000, reference="same")
    first = billing.record_payment(uow, TENANT, pay)
    again = billing.record_payment(uow, TENANT, pay)
    assert again.id == first.id
    assert (len(bills.payments), len(uow.events), bill.paid_cents) == (1, 1, 1_000)


def test_an_overpayment_is_refused_and_changes_nothing(bills: FakeBills) -> None:
    bill = _bill(10_000)
    uow = _with(bills, bill)
    with pytest.raises(RuleViolation) as refused:
        billing.record_payment(uow, TENANT, PayBill(bill_id=bill.id, amount_cents=10_001))
    assert refused.value.rule == "overpayment"
    assert (bills.payments, uow.events, bill.paid_cents) == ([], [], 0)


def test_someone_elses_bill_is_not_found(bills: FakeBills) -> None:
    bill = _bill(10_000)
    uow = _with(bills, bill)
    with pytest.raises(NotFound):
        billing.record_payment(uow, OTHER_TENANT, PayBill(bill_id=bill.id, amount_cents=100))
    with pytest.raises(NotFound):
        billing.get_bill(uow, OTHER_TENANT, bill.id)
    assert billing.get_bill(uow, LANDLORD, bill.id).outstanding_cents == 10_000


def test_owed_per_lease_adds_every_open_bill_however_many(bills: FakeBills) -> None:
    made = [_bill(100 + i, day=i) for i in range(130)]
    settled = _bill(5_000, BillStatus.PAID, day=200, paid=5_000)
    part = _bill(1_000, BillStatus.PARTIALLY_PAID, day=201, paid=400)
    uow = _with(bills, *made, settled, part)
    owed = sum(100 + i for i in range(130)) + 600
    assert billing.owed_by_lease(uow, TENANT, [LEASE]) == {LEASE: owed}
    assert billing.owed_by_lease(uow, LANDLORD, [LEASE]) == {LEASE: owed}
    assert billing.owed_by_lease(uow, OTHER_TENANT, [LEASE]) == {}
    assert billing.payable_bills(uow, TENANT, [settled.id, part.id]) == {part.id}
    every = [b.id for b in (*made, settled, part)]
    assert billing.payable_bills(uow, TENANT, every) == {b.id for b in made} | {part.id}
    assert billing.payable_bills(uow, OTHER_TENANT, every) == set()


def test_the_command_worker_builds_service_commands_from_kafka_messages() -> None:
    house, tenant, day = uuid.uuid4(), TENANT.id, date(2026, 5, 1)
    when = datetime(2026, 5, 1, 10, tzinfo=UTC)
    cases = [
        (msg.SubmitApplication(tenant_id=tenant, house_id=house, start_date=day, end_date=day), ApplyForHouse),
        (msg.WithdrawApplication(tenant_id=tenant, application_id=house), WithdrawApplication),
        (msg.RequestViewing(tenant_id=tenant, house_id=house, scheduled_at=when, note="am"), RequestViewing),
        (msg.RequestMaintenance(tenant_id=tenant, house_id=house, title="Tap"), RequestMaintenance),
        (msg.PayBill(tenant_id=tenant, bill_id=house, amount_cents=5, reference="k"), PayBill),
    ]
    for message, kind in cases:
        command = worker.to_command(message)
        assert type(command) is kind
        shared = set(command.model_dump()) & set(message.model_dump())
        assert shared and all(getattr(command, k) == getattr(message, k) for k in shared), kind
    assert worker.to_command(cases[4][0]) == PayBill(bill_id=house, amount_cents=5, reference="k")
    with pytest.raises(PermanentError):
        worker.to_command(msg.CommandRejected(command_id="x", command_type="t", status=409, reason="r"))


def test_a_pay_bill_message_runs_the_payment_handler(bills: FakeBills) -> None:
    bill = _bill(10_000)
    uow = _with(bills, bill)
    worker.dispatch(uow, TENANT, msg.PayBill(tenant_id=TENANT.id, bill_id=bill.id, amount_cents=2_500, reference="k1"))
    worker.dispatch(uow, TENANT, msg.PayBill(tenant_id=TENANT.id, bill_id=bill.id, amount_cents=2_500, reference="k1"))
    assert [(p.amount_cents, p.method) for p in bills.payments] == [(2_500, "card")]
    with pytest.raises(InvalidValue) as refused:
        worker.dispatch(
            uow,
            TENANT,
            msg.SubmitApplication(
                tenant_id=TENANT.id, house_id=HOUSE, start_date=date(1990, 1, 1), end_date=date(1990, 2, 1)
            ),
        )
    assert refused.value.field == "start_date"
