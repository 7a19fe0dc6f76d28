"""One simulation run: preflight, workers, the seeded schedule of actions and faults, settling, audit, report.

The run owns nothing it did not start: managed workers are stopped at the end, servers stopped by a fault
are started again before the fault returns, and the report is written whatever the audit says.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel
from quartet_contracts.registry import ce_type_of
from quartet_contracts.schemas.planning import PlanRequested
from quartet_contracts.schemas.rental import RequestViewing
from quartet_contracts.schemas.training import TrainingRequested
from quartet_contracts.topics import DLQ_SUFFIX
from quartet_shared.jobservice import JobTopics
from quartet_shared.topics import ensure_topics

from simulator import preflight
from simulator.cluster import ClusterControl, ClusterFaults, on_side_listeners
from simulator.domain.audit import EventSeen, RentalFindings
from simulator.domain.plan import Plan, PlannedJourney, build_plan
from simulator.domain.report import FaultRecord, RunReport
from simulator.domain.scenario import PlanningAction, RentalAction, Scenario, TrainingAction
from simulator.faults import FaultInjector
from simulator.kafka_io import Collector, LagSampler, Publisher, RunClients, group_members
from simulator.probes import AbortedProbes
from simulator.reporting import Observed, Timing, build_report
from simulator.schedule import Schedule
from simulator.servers import ServerControl
from simulator.settings import SimulatorSettings
from simulator.settling import Settler
from simulator.workers import NativeWorkers, WorkerCommand, WorkerControl, worker_command

log = logging.getLogger(__name__)

REQUEST_TYPES = {
    "training": ce_type_of(TrainingRequested),
    "planning": ce_type_of(PlanRequested),
    "rental": ce_type_of(RequestViewing),
}


class RentalDriver(Protocol):
    """The rental side of a run: journeys over HTTP, and the lease and event checks."""

    @property
    def event_topics(self) -> list[str]:
        """The topics whose events the collector reads for the rental checks."""
        ...

    @property
    def commands_topic(self) -> str:
        """The topic the rental manager takes commands from (garbage goes there too)."""
        ...

    def problems(self) -> list[str]:
        """Why the rental manager cannot be used (empty when it can)."""
        ...

    def setup(self, scenario: Scenario) -> None:
        """Create the landlords and houses the journeys play on."""
        ...

    def journey(self, journey: PlannedJourney, action: RentalAction, pause: Callable[[float], bool]) -> None:
        """Play one tenant journey; `pause(seconds)` returns False when the run is stopping."""
        ...

    def settled(self, events: list[EventSeen]) -> bool:
        """True once everything the rental manager committed during the run is among `events`."""
        ...

    def findings(self, events: list[EventSeen]) -> RentalFindings:
        """Journey counts and the lease-overlap and event-vs-database checks."""
        ...


@dataclass
class Status:
    """Where a run is, for `GET /runs/{id}`."""

    phase: str = "starting"
    elapsed_s: float = 0.0
    submitted: int = 0
    results: int = 0
    faults: int = 0
    message: str = ""


@dataclass
class Simulation:
    """A run of `scenario` against the system `settings` point at."""

    settings: SimulatorSettings
    scenario: Scenario
    out_dir: Path
    servers: ServerControl | None = None
    worker_control: WorkerControl | None = None
    rental: RentalDriver | None = None
    cluster: ClusterControl | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    status: Status = field(default_factory=Status)
    _stop: threading.Event = field(default_factory=threading.Event)
    _abort: threading.Event = field(default_factory=threading.Event)
    _notes: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _faults: FaultInjector = field(default_factory=lambda: FaultInjector(None, None), init=False)
    _prepared: bool = field(default=False, init=False)
    _commands: dict[str, WorkerCommand] = field(default_factory=dict, init=False)

    def stop(self, *, settle: bool = True) -> None:
        """Cut the load short; with `settle` False also stop waiting for the system to settle (a shutdown).

        Either way the managed workers are stopped and the audit and report still happen.
        """
        self._stop.set()
        if not settle:
            self._abort.set()

    # ---- wiring ------------------------------------------------------------------------------------

    def _topics(self) -> dict[str, JobTopics]:
        return {kind: JobTopics.of(kind, self.settings.topic_prefix) for kind in self.scenario.kinds()}

    def _group(self, topics: JobTopics) -> str:
        return f"{topics.jobs}{self.settings.worker_group_suffix}"

    def _groups(self) -> dict[str, str]:
        return {kind: self._group(t) for kind, t in self._topics().items()}

    def _group_topics(self) -> dict[str, list[str]]:
        return {self._group(t): [t.jobs] for t in self._topics().values()}

    def _managed(self) -> dict[str, int]:
        pools = {"training": self.scenario.workers.training, "planning": self.scenario.workers.planning}
        return {k: p.count for k, p in pools.items() if p is not None and p.count > 0 and k in self.scenario.kinds()}

    def _worker_commands(self) -> dict[str, WorkerCommand]:
        commands = {
            kind: worker_command(self.settings, kind, getattr(self.scenario.workers, kind)) for kind in self._managed()
        }
        partitioned = self.scenario.partitioned_workers()
        return on_side_listeners(commands, partitioned, self.cluster) if self.cluster is not None else commands

    # ---- the run -----------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Check every part the scenario needs is up, and create the job topics; PreflightError names what is not."""
        if self._prepared:
            return
        self._phase("preflight")
        sc = self.scenario
        topics = self._topics()
        managed = self._managed()
        controlled = set(managed)
        if self.worker_control is not None and not managed:
            controlled |= set(self.worker_control.kinds())
        preflight.check(
            self.settings,
            sc,
            worker_groups=self._groups(),
            managed=set(managed),
            controlled=controlled,
            has_server_control=self.servers is not None,
            cluster=self.cluster,
            members=lambda names: group_members(self.settings, names),
            rental_needed=(self.rental.problems if self.rental is not None else _no_rental(sc)),
        )
        if managed:
            self._commands = self._worker_commands()
        for t in topics.values():
            ensure_topics(self.settings, t.specs())
        self._prepared = True

    def run(self) -> RunReport:
        """Run the scenario and return its report (also written as report.json and report.html)."""
        self.prepare()
        plan = build_plan(self.scenario)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        native = self._native_workers()
        clients = self._clients()
        timing = Timing(started_at=datetime.now(UTC), t0=time.time())
        try:
            timing = self._load_and_settle(plan, native, clients, timing)
        finally:
            clients.close()
            if native is not None:
                self._phase("stopping workers")
                # Inside the contract's 30 s when the simulator itself is being stopped.
                native.stop(timeout_s=15 if self._abort.is_set() else 35)
        self._phase("auditing")
        report = build_report(self.run_id, self.scenario, plan, timing, self._observed(clients))
        (self.out_dir / "report.json").write_text(report.model_dump_json(indent=2))
        # Imported here: matplotlib builds its font cache on first import (tens of seconds on a fresh, loaded
        # machine), and the API must answer /healthz long before any run has a report to draw.
        from simulator.render import write_html

        write_html(report, self.out_dir / "report.html")
        self._phase("passed" if report.passed else "failed")
        return report

    def _native_workers(self) -> NativeWorkers | None:
        """The supervisor of the workers the run manages itself (None when it manages none); it controls them too."""
        managed = self._managed()
        if not managed:
            return None
        native = NativeWorkers(
            self._commands,
            managed,
            self.out_dir / "workers",
            restart_delay_s=self.scenario.workers.restart_delay_s,
            on_event=self._note,
        )
        self.worker_control = native
        return native

    def _clients(self) -> RunClients:
        topics = self._topics()
        commands = self._commands_topic()
        has_rental = self.rental is not None and self.scenario.has_rental()
        collector = Collector(
            self.settings,
            results={t.results: kind for kind, t in topics.items()},
            dead_letters=[t.jobs + DLQ_SUFFIX for t in topics.values()]
            + ([commands + DLQ_SUFFIX] if commands is not None else []),
            events=self.rental.event_topics if self.rental is not None and has_rental else [],
        )
        lag = LagSampler(self.settings, self._group_topics(), self.scenario.audit.lag_interval_s)
        publisher = Publisher(self.settings, delivery_timeout_s=self.settings.publish_timeout_s)
        probes = AbortedProbes(
            self.settings,
            sorted(t.results for t in topics.values()),
            self.run_id,
            self.scenario.audit.aborted_probe_interval_s,
        )
        return RunClients(publisher, collector, lag, probes)

    def _load_and_settle(self, plan: Plan, native: NativeWorkers | None, clients: RunClients, timing: Timing) -> Timing:
        """Start the workers and readers, play the plan, then wait for the system to settle; says how long each took."""
        groups = self._groups()
        if native is not None:
            self._phase("starting workers")
            native.start()
            self._await_members(native, groups, self._managed())
        clients.collector.begin()
        clients.lag.start()
        clients.probes.start()
        if self.rental is not None and self.scenario.has_rental():
            self._phase("rental setup")
            self.rental.setup(self.scenario)
        self._phase("load")
        t0 = self._execute(plan, clients.publisher)
        load_s = time.time() - t0
        # The probes' transactions end with the load: settling then waits on the system's own work only.
        clients.probes.stop()
        self._phase("settling")
        settle_started = time.time()
        settler = Settler(self.settings, self.scenario, self.rental, self.status, self._note, self._abort)
        settled = settler.settle(clients.publisher, clients.collector, groups, self._group_topics())
        return replace(timing, t0=t0, load_s=load_s, settle_s=time.time() - settle_started, settled=settled)

    def _observed(self, clients: RunClients) -> Observed:
        results, dead, corrupt, events = clients.collector.snapshot()
        notes = list(self._notes)
        if clients.collector.errors:
            notes.append(f"audit consumer reconnected {clients.collector.errors} time(s)")
        if clients.probes.errors:
            notes.append(f"{clients.probes.errors} aborted-probe round(s) failed (their probes still count as aborted)")
        return Observed(
            sent=clients.publisher.sent_jobs(),
            garbage=clients.publisher.sent_garbage(),
            results=results,
            dead_letters=dead,
            corrupt=corrupt,
            lag=clients.lag.snapshot(),
            faults=self._faults.records(),
            workers=self.worker_control.stats() if self.worker_control is not None else {},
            rental=_rental_findings(self.rental if self.scenario.has_rental() else None, events),
            notes=notes,
            events=events,
            aborted_ids=clients.probes.ids(),
        )

    def _phase(self, phase: str) -> None:
        self.status.phase = phase
        log.info("simulation %s: %s", self.run_id, phase)

    def _note(self, message: str) -> None:
        with self._lock:
            self._notes.append(message)
        log.info(message)

    def _await_members(self, native: NativeWorkers, groups: dict[str, str], managed: dict[str, int]) -> None:
        """Wait until every managed worker has joined its group, so the first jobs meet a full set of workers."""
        deadline = time.monotonic() + self.scenario.workers.ready_timeout_s
        wanted = {groups[k]: n for k, n in managed.items()}
        found: dict[str, int] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                found = group_members(self.settings, list(wanted))
                if all(found.get(g, 0) >= n for g, n in wanted.items()):
                    return
            time.sleep(0.5)
        details = "; ".join(
            f"{kind}: {found.get(groups[kind], 0)} of {n} joined; log tail:\n{native.tail(kind)}"
            for kind, n in managed.items()
        )
        raise preflight.PreflightError([f"managed workers did not all join their groups in time ({details})"])

    # ---- the schedule ------------------------------------------------------------------------------

    def _execute(self, plan: Plan, publisher: Publisher) -> float:
        """Dispatch every planned action, duplicate, garbage message and fault at its time; returns when it began."""
        schedule = Schedule()
        self._schedule_jobs(schedule, plan, publisher)
        self._schedule_garbage(schedule, plan, publisher)
        journeys = ThreadPoolExecutor(max_workers=32, thread_name_prefix="sim-journey")
        if self.rental is not None:
            for j in plan.journeys:
                action = self.scenario.mix[j.mix_index]
                assert isinstance(action, RentalAction)
                schedule.at(j.at_s, _bind(journeys.submit, self._journey, self.rental, j, action))
        elif plan.journeys:
            self._note(f"{len(plan.journeys)} rental journeys skipped: no rental driver")
        cluster = ClusterFaults.of(self.cluster, self.settings) if self.cluster is not None else None
        self._faults = FaultInjector(self.servers, self.worker_control, cluster, on_recorded=self._count_fault)
        for f in plan.faults:
            schedule.at(f.at_s, _bind(self._faults.start, f))
        self._faults.t0_wall = t0 = time.time()
        try:
            schedule.play(self._stop, self.scenario.duration_s, self._tick, self._action_failed)
        finally:
            journeys.shutdown(wait=True)
            self._faults.join()
        return t0

    def _schedule_jobs(self, schedule: Schedule, plan: Plan, publisher: Publisher) -> None:
        topics = self._topics()
        for job in plan.jobs:
            action = self.scenario.mix[job.mix_index]
            assert isinstance(action, TrainingAction | PlanningAction)
            entry = action.pool[job.pool_index]
            spec: BaseModel = entry.spec
            if job.seed is not None:
                spec = spec.model_copy(update={"seed": job.seed})
            job_id = str(uuid.uuid4())
            submit = _bind(self._submit, publisher, job.kind, topics[job.kind].jobs, job_id, spec, entry.large)
            schedule.at(job.submit_at_s, submit)
            if job.duplicate_after_s is not None:
                schedule.at(job.submit_at_s + job.duplicate_after_s, _bind(publisher.duplicate, job_id))

    def _schedule_garbage(self, schedule: Schedule, plan: Plan, publisher: Publisher) -> None:
        topics = self._topics()
        for g in plan.garbage:
            topic = topics[g.kind].jobs if g.kind in topics else self._commands_topic()
            if topic is None:
                continue
            key = f"garbage-{self.run_id}-{g.index}"
            publish = _bind(publisher.garbage, g.kind, topic, key, g.flavour, REQUEST_TYPES[g.kind], g.payload_seed)
            schedule.at(g.at_s, publish)

    def _tick(self, elapsed_s: float) -> None:
        self.status.elapsed_s = elapsed_s

    def _action_failed(self, when_s: float, exc: Exception) -> None:
        self._note(f"action failed at {when_s:.1f} s: {type(exc).__name__}: {exc}")

    def faults_so_far(self) -> tuple[float, list[FaultRecord]]:
        """When the faults' clock started (epoch seconds; 0.0 before the load began) and the faults ended so far."""
        return self._faults.t0_wall, self._faults.records()

    def _count_fault(self, record: FaultRecord) -> None:
        self.status.faults += 1

    def _commands_topic(self) -> str | None:
        return self.rental.commands_topic if self.rental is not None and self.scenario.has_rental() else None

    def _submit(self, publisher: Publisher, kind: str, topic: str, job_id: str, spec: BaseModel, large: bool) -> None:
        publisher.submit(kind, topic, job_id, spec, large=large)
        self.status.submitted += 1

    def _journey(self, rental: RentalDriver, journey: PlannedJourney, action: RentalAction) -> None:
        try:
            rental.journey(journey, action, lambda s: not self._stop.wait(s))
        except Exception as exc:
            self._note(f"rental journey {journey.index} stopped: {type(exc).__name__}: {exc}")


def _bind(fn: Callable[..., Any], *args: Any) -> Callable[[], None]:
    def call() -> None:
        fn(*args)

    return call


def _no_rental(scenario: Scenario) -> Callable[[], list[str]] | None:
    if not scenario.has_rental():
        return None
    return lambda: ["the scenario has rental journeys but no rental driver was given"]


def _rental_findings(rental: RentalDriver | None, events: list[EventSeen]) -> RentalFindings | None:
    """What the rental driver found in the events, when the scenario has rental journeys; an error is reported."""
    if rental is None:
        return None
    try:
        return rental.findings(events)
    except Exception as exc:
        return RentalFindings(checked=True, unavailable=f"{type(exc).__name__}: {exc}")
