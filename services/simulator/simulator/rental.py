"""Rental journeys over the rental manager's HTTP API, and the rental checks against its database.

`RentalApi` is the only place that knows the rental manager's routes and bodies: when they change, it is
the one thing to adjust. `RentalHttpDriver` plays the journeys (a landlord lists houses; a tenant searches,
books a viewing and applies; the landlord approves; the deposit bill is paid; a repair is requested and
resolved) and, after the run, checks that no house has overlapping leases and that the events on
`rental.events` are exactly the outbox rows the database committed, covering every change the journeys made.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from quartet_contracts.envelope import Envelope
from quartet_contracts.schemas.rental import RequestViewing
from quartet_shared.db import make_engine
from quartet_shared.producer import Producer
from sqlalchemy import text

from simulator.domain.audit import EventSeen, RentalFindings
from simulator.domain.plan import JOURNEY_STEPS, PlannedJourney
from simulator.domain.rental_checks import event_mismatches, overlapping
from simulator.domain.scenario import RentalAction, Scenario
from simulator.preflight import database_problem, http_problem
from simulator.settings import SimulatorSettings

EVENT = "quartet.rental.{}.v1"
PASSWORD = "simulated-Passw0rd"
CITY = "Simville"
DISTRICTS = ("North", "Harbour", "Old Town", "Riverside")


class RentalHttpError(RuntimeError):
    """The rental manager answered with an error the journey did not expect."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} answered {status}: {body[:300]}")
        self.status = status


class RentalConflict(RentalHttpError):
    """A 409: a rule of the rental manager said no (an overlapping lease, an application already decided)."""


@dataclass
class RentalApi:
    """The rental manager's HTTP API, as the journeys use it."""

    base_url: str
    timeout_s: float = 10.0
    _client: httpx.Client | None = None

    def client(self) -> httpx.Client:
        """A shared connection pool (httpx clients are thread-safe)."""
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.base_url.rstrip("/"),
                timeout=self.timeout_s,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            )
        return self._client

    def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.client().request(method, path, headers=headers, **kwargs)
        if response.status_code == 409:
            raise RentalConflict(method, path, 409, response.text)
        if response.is_error:
            raise RentalHttpError(method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def register(self, email: str, name: str, role: str) -> dict[str, Any]:
        """Create a tenant or landlord account."""
        body = {"email": email, "password": PASSWORD, "full_name": name, "role": role}
        user: dict[str, Any] = self._call("POST", "/auth/register", json=body)
        return user

    def login(self, email: str) -> str:
        """An access token (OAuth2 password flow)."""
        answer = self._call("POST", "/auth/token", data={"username": email, "password": PASSWORD})
        return str(answer["access_token"])

    def create_house(self, token: str, **fields: Any) -> dict[str, Any]:
        """A landlord's new house, listed at once."""
        house: dict[str, Any] = self._call("POST", "/houses", token, json={**fields, "list_now": True})
        return house

    def search(self, token: str, **params: Any) -> dict[str, Any]:
        """A page of houses matching the filters."""
        page: dict[str, Any] = self._call("GET", "/houses", token, params=params)
        return page

    def house(self, token: str, house_id: str) -> dict[str, Any]:
        """One house in detail."""
        found: dict[str, Any] = self._call("GET", f"/houses/{house_id}", token)
        return found

    def book_viewing(self, token: str, house_id: str, when: datetime) -> dict[str, Any]:
        """A viewing appointment request."""
        body = {"scheduled_at": when.isoformat(), "note": "simulated visit"}
        viewing: dict[str, Any] = self._call("POST", f"/houses/{house_id}/viewings", token, json=body)
        return viewing

    def apply(self, token: str, house_id: str, start: date, end: date) -> dict[str, Any]:
        """A rental application for [start, end]."""
        body = {"start_date": start.isoformat(), "end_date": end.isoformat(), "message": "simulated tenant"}
        application: dict[str, Any] = self._call("POST", f"/houses/{house_id}/applications", token, json=body)
        return application

    def approve(self, token: str, application_id: str) -> dict[str, Any]:
        """The landlord approves: a lease is signed (RentalConflict if the house is taken for those days)."""
        decided: dict[str, Any] = self._call("POST", f"/applications/{application_id}/approve", token, json={})
        return decided

    def bills(self, token: str, lease_id: str) -> list[dict[str, Any]]:
        """A lease's bills."""
        page = self._call("GET", "/bills", token, params={"lease_id": lease_id})
        items: list[dict[str, Any]] = page["items"] if isinstance(page, dict) else page
        return items

    def pay(self, token: str, bill_id: str, amount_cents: int) -> dict[str, Any]:
        """A payment against a bill."""
        body = {"amount_cents": amount_cents, "method": "card", "reference": f"sim-{uuid.uuid4().hex[:12]}"}
        payment: dict[str, Any] = self._call("POST", f"/bills/{bill_id}/payments", token, json=body)
        return payment

    def request_repair(self, token: str, house_id: str, title: str) -> dict[str, Any]:
        """A tenant's maintenance request."""
        body = {"title": title, "description": "reported by a simulated tenant", "priority": "normal"}
        request: dict[str, Any] = self._call("POST", f"/houses/{house_id}/maintenance", token, json=body)
        return request

    def move_repair(self, token: str, request_id: str, status: str) -> dict[str, Any]:
        """Move a maintenance request along its flow."""
        moved: dict[str, Any] = self._call(
            "POST", f"/maintenance/{request_id}/status", token, json={"status": status, "note": "simulated"}
        )
        return moved


@dataclass(frozen=True)
class _House:
    id: str
    landlord_token: str


@dataclass
class _TenantJourney:
    """One tenant's steps through the rental manager; each step returns the name it is counted under."""

    driver: RentalHttpDriver
    api: RentalApi
    journey: PlannedJourney
    action: RentalAction
    tenant_id: str
    token: str
    house: _House
    application_id: str = ""
    lease_id: str = ""
    bills: list[dict[str, Any]] = field(default_factory=list)

    def steps(self) -> list[tuple[str, Callable[[], str]]]:
        """The steps this journey takes, in order, each with the name of its think time."""
        steps: list[tuple[str, Callable[[], str]]] = [
            ("search", self.search),
            ("view_house", self.view_house),
            ("book_viewing", self.book_viewing),
            ("apply", self.apply),
            ("approve", self.approve),
            ("issue_bill", self.issue_bill),
        ]
        if self.action.pay_bills:
            steps.append(("pay_bill", self.pay_bills))
        if self.journey.repair:
            steps.append(("repair", self.repair))
        return steps

    def search(self) -> str:
        """Search the city's listings."""
        self.api.search(self.token, city=CITY, page_size=20)
        return "search"

    def view_house(self) -> str:
        """Open the chosen house."""
        self.api.house(self.token, self.house.id)
        return "view_house"

    def book_viewing(self) -> str:
        """Book a viewing, over HTTP or as a Kafka command (twice when the plan duplicates it)."""
        when = datetime.now(UTC) + timedelta(days=1, hours=self.journey.index % 9)
        if self.journey.command:
            self.driver.command_viewing(self.tenant_id, self.house.id, when, twice=self.journey.duplicate_command)
            return "book_viewing_by_command"
        viewing = self.api.book_viewing(self.token, self.house.id, when)
        self.driver.expect("ViewingRequested", "viewing_id", viewing["id"])
        return "book_viewing"

    def apply(self) -> str:
        """Apply for the planned months."""
        start = date.today() + timedelta(days=self.journey.start_in_days)
        end = start + timedelta(days=30 * self.journey.months - 1)
        application = self.api.apply(self.token, self.house.id, start, end)
        self.application_id = application["id"]
        self.driver.expect("ApplicationSubmitted", "application_id", self.application_id)
        return "apply"

    def approve(self) -> str:
        """The landlord approves, which signs the lease."""
        decided = self.api.approve(self.house.landlord_token, self.application_id)
        self.lease_id = str(decided.get("lease_id") or "")
        self.driver.expect("ApplicationApproved", "application_id", self.application_id)
        self.driver.expect("LeaseSigned", "lease_id", self.lease_id)
        return "approve"

    def issue_bill(self) -> str:
        """Read the bills the lease issued."""
        self.bills = self.api.bills(self.token, self.lease_id)
        for bill in self.bills:
            self.driver.expect("BillIssued", "bill_id", bill["id"])
        return "issue_bill"

    def pay_bills(self) -> str:
        """Pay what is outstanding on every bill."""
        for bill in self.bills:
            if int(bill.get("outstanding_cents") or 0) > 0:
                payment = self.api.pay(self.token, bill["id"], int(bill["outstanding_cents"]))
                self.driver.expect("PaymentRecorded", "payment_id", payment["id"])
        return "pay_bill"

    def repair(self) -> str:
        """Ask for a repair, which the landlord takes through to resolved."""
        request = self.api.request_repair(self.token, self.house.id, "The tap drips")
        self.driver.expect("MaintenanceRequested", "request_id", request["id"])
        for status in ("acknowledged", "in_progress", "resolved"):
            self.api.move_repair(self.house.landlord_token, request["id"], status)
        self.driver.expect("MaintenanceResolved", "request_id", request["id"])
        return "repair"


@dataclass
class RentalHttpDriver:
    """Rental journeys over HTTP and the rental checks over the rental manager's database."""

    settings: SimulatorSettings
    api: RentalApi | None = None
    run_tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    settle_timeout_s: float = 60.0
    _houses: list[_House] = field(default_factory=list)
    _expected: list[tuple[str, str, str]] = field(default_factory=list)
    _once: list[tuple[str, str, str]] = field(default_factory=list)
    _producer: Producer | None = None
    _commands: int = 0
    _steps: Counter[str] = field(default_factory=Counter)
    _errors: list[str] = field(default_factory=list)
    _conflicts: int = 0
    _journeys: int = 0
    _completed: int = 0
    _since: datetime = field(default_factory=lambda: datetime.now(UTC))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.api is None:
            self.api = RentalApi(self.settings.rental_url, self.settings.http_timeout_s)

    @property
    def event_topics(self) -> list[str]:
        """The topic the rental manager's relay publishes to."""
        return [f"{self.settings.rental_topic_prefix}rental.events"]

    @property
    def commands_topic(self) -> str:
        """The topic the rental manager takes commands from."""
        return f"{self.settings.rental_topic_prefix}rental.commands"

    @property
    def database_url(self) -> str | None:
        """The rental manager's database (its own setting, else DATABASE_URL)."""
        return self.settings.rental_database_url or self.settings.database_url

    def problems(self) -> list[str]:
        """Why the journeys or the checks cannot run."""
        out = []
        why = http_problem(self.settings.rental_url, "the rental manager")
        if why:
            out.append(why)
        if self.database_url is None:
            out.append("the rental checks need the rental manager's database: set SIMULATOR_RENTAL_DATABASE_URL")
        else:
            why = database_problem(self.database_url, "the rental manager's database") or self._schema_problem()
            if why:
                out.append(why)
        return out

    def _schema_problem(self) -> str | None:
        """None if the database has the rental manager's tables (a wrong DATABASE_URL is a common slip)."""
        assert self.database_url is not None
        engine = make_engine(self.database_url)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1 FROM leases WHERE 1 = 0"))
                conn.execute(text("SELECT 1 FROM outbox WHERE 1 = 0"))
        except Exception:
            return (
                "the rental manager's tables (leases, outbox) are not in the database the rental checks use: "
                "set SIMULATOR_RENTAL_DATABASE_URL to the rental manager's database"
            )
        finally:
            engine.dispose()
        return None

    # ---- journeys -------------------------------------------------------------------------------------

    def expect(self, event: str, field_name: str, value: Any) -> None:
        """Note that an `event` whose `field_name` is `value` must reach the events topic."""
        with self._lock:
            self._expected.append((EVENT.format(event), field_name, str(value)))

    def _step(self, name: str) -> None:
        with self._lock:
            self._steps[name] += 1

    def setup(self, scenario: Scenario) -> None:
        """Register the landlords and list their houses."""
        api = self._api()
        self._since = datetime.now(UTC) - timedelta(seconds=1)
        setup = scenario.rental
        for n in range(setup.landlords):
            email = f"sim-{self.run_tag}-landlord-{n}@example.test"
            landlord = api.register(email, f"Simulated Landlord {n}", "landlord")
            self.expect("UserRegistered", "user_id", landlord["id"])
            token = api.login(email)
            for h in range(setup.houses_per_landlord):
                house = api.create_house(
                    token,
                    title=f"Simulated flat {n}-{h} ({self.run_tag})",
                    address=f"{10 + h} Simulation Street",
                    city=CITY,
                    district=DISTRICTS[(n + h) % len(DISTRICTS)],
                    area_m2=40 + 10 * h,
                    rooms=1 + h % 4,
                    monthly_rent_cents=80_000 + 5_000 * h,
                    deposit_cents=160_000,
                )
                self.expect("HouseListed", "house_id", house["id"])
                self._houses.append(_House(str(house["id"]), token))

    def _api(self) -> RentalApi:
        assert self.api is not None
        return self.api

    def journey(self, journey: PlannedJourney, action: RentalAction, pause: Callable[[float], bool]) -> None:
        """One tenant's way from a search to a lease, a paid deposit and a resolved repair."""
        with self._lock:
            self._journeys += 1
        think = dict(zip(JOURNEY_STEPS, journey.think_s, strict=True))
        try:
            tenant = self._register_tenant(journey, action)
            for name, step in tenant.steps():
                if not pause(think[name]):
                    return
                self._step(step())
            with self._lock:
                self._completed += 1
        except RentalConflict:
            # Someone else's lease holds the house for those days: the rule working, not a failure.
            with self._lock:
                self._conflicts += 1
        except (RentalHttpError, httpx.HTTPError) as exc:
            with self._lock:
                self._errors.append(f"journey {journey.index}: {type(exc).__name__}: {exc}")

    def _register_tenant(self, journey: PlannedJourney, action: RentalAction) -> _TenantJourney:
        api = self._api()
        email = f"sim-{self.run_tag}-tenant-{journey.index}@example.test"
        tenant = api.register(email, f"Simulated Tenant {journey.index}", "tenant")
        self.expect("UserRegistered", "user_id", tenant["id"])
        house = self._houses[min(len(self._houses) - 1, int(journey.house_pick * len(self._houses)))]
        return _TenantJourney(self, api, journey, action, str(tenant["id"]), api.login(email), house)

    def command_viewing(self, tenant_id: str, house_id: str, when: datetime, *, twice: bool) -> None:
        """Book a viewing with a RequestViewing command (published twice when `twice`): one viewing must result."""
        with self._lock:
            if self._producer is None:
                self._producer = Producer(self.settings)
            producer = self._producer
        command = RequestViewing(
            tenant_id=uuid.UUID(tenant_id), house_id=uuid.UUID(house_id), scheduled_at=when, note="by command"
        )
        envelope = Envelope.of(command, source="/quartet/simulator", key=house_id)
        for _ in range(2 if twice else 1):
            producer.send_confirmed(self.commands_topic, envelope, timeout_s=self.settings.publish_timeout_s)
        with self._lock:
            self._commands += 1 + int(twice)
            self._once.append((EVENT.format("ViewingRequested"), "tenant_id", tenant_id))

    def close(self) -> None:
        """Close the HTTP pool and the command producer."""
        self._api().close()
        if self._producer is not None:
            self._producer.close(timeout_s=5)
            self._producer = None

    # ---- checks ---------------------------------------------------------------------------------------

    def _outbox(self, ids: list[str]) -> tuple[list[Any], dict[str, tuple[str, str, bool]]]:
        """The leases, and the outbox rows written since setup or named by `ids` (the events seen)."""
        assert self.database_url is not None
        engine = make_engine(self.database_url)
        try:
            with engine.connect() as conn:
                leases = conn.execute(text("SELECT id, house_id, start_date, end_date FROM leases")).all()
                rows = list(
                    conn.execute(
                        text("SELECT id, ce_type, key, sent_at FROM outbox WHERE created_at >= :since"),
                        {"since": self._since.replace(tzinfo=None)},
                    ).all()
                )
                known = {str(r.id) for r in rows}
                missing = [i for i in ids if i not in known]
                for chunk in range(0, len(missing), 500):
                    batch = missing[chunk : chunk + 500]
                    params = {f"i{n}": value for n, value in enumerate(batch)}
                    names = ", ".join(f"CAST(:i{n} AS {self._uuid_type(conn)})" for n in range(len(batch)))
                    rows += conn.execute(
                        text(f"SELECT id, ce_type, key, sent_at FROM outbox WHERE id IN ({names})"), params
                    ).all()
        finally:
            engine.dispose()
        return list(leases), {str(r.id): (str(r.ce_type), str(r.key), r.sent_at is not None) for r in rows}

    @staticmethod
    def _uuid_type(conn: Any) -> str:
        return "UUID" if conn.dialect.name == "postgresql" else "CHAR(36)"

    def settled(self, events: list[EventSeen]) -> bool:
        """True once every outbox row written since setup has been relayed and seen on the topic."""
        _, rows = self._outbox([])
        seen = {e.ce_id for e in events}
        relayed = all(sent and row_id in seen for row_id, (_, _, sent) in rows.items())
        # A command's effect is written only once the rental worker has consumed it.
        applied = {(e.ce_type, str(e.data.get(name))) for e in events for _, name, _ in self._once}
        return relayed and all((ce_type, value) in applied for ce_type, _, value in self._once)

    def findings(self, events: list[EventSeen]) -> RentalFindings:
        """Journey counts, lease overlaps, and the events against the database's outbox."""
        found = RentalFindings(
            checked=True,
            journeys=self._journeys,
            completed=self._completed,
            steps=dict(self._steps),
            conflicts=self._conflicts,
            errors=list(self._errors),
            commands=self._commands,
        )
        self.close()
        if self.database_url is None:
            found.unavailable = "no rental database configured"
            return found
        leases, rows = self._outbox(sorted({e.ce_id for e in events}))
        found.leases = len(leases)
        found.overlapping_leases = overlapping(
            [(str(r.id), str(r.house_id), _day(r.start_date), _day(r.end_date)) for r in leases]
        )
        found.events_seen = len(events)
        found.event_mismatches = event_mismatches(rows, events, self._expected, self._once)
        return found


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
