"""One simulation run: preflight, workers, the seeded schedule of actions and faults, settling, audit, report.

The run owns nothing it did not start: managed workers are stopped at the end, servers stopped by a fault
are started again before the fault returns, and the report is written whatever the audit says.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, SecretStr
from quartet_contracts.registry import ce_type_of
from quartet_contracts.schemas.planning import PlanRequested
from quartet_contracts.schemas.rental import RequestViewing
from quartet_contracts.schemas.training import TrainingRequested
from quartet_contracts.topics import DLQ_SUFFIX
from quartet_shared.jobservice import JobTopics
from quartet_shared.topics import ensure_topics

from simulator import preflight
from simulator.domain.audit import AuditPolicy, Check, EventSeen, RentalFindings, reconcile
from simulator.domain.plan import Plan, PlannedFault, PlannedJourney, build_plan
from simulator.domain.report import FaultRecord, LagSeries, Planned, RunReport, Throughput
from simulator.domain.scenario import (
    BrokerRestartFault,
    KillWorkerFault,
    PauseWorkerFault,
    PlanningAction,
    RedisOutageFault,
    RentalAction,
    Scenario,
    SlowConsumerFault,
    TrainingAction,
)
from simulator.domain.stats import bucket_percentiles, bucket_size, rate_series
from simulator.kafka_io import Collector, LagSampler, Publisher, group_members, ids_between
from simulator.render import write_html
from simulator.servers import ServerControl
from simulator.settings import SimulatorSettings
from simulator.workers import NativeWorkers, WorkerCommand, WorkerControl, base_environment, resolve_command

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
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    status: Status = field(default_factory=Status)
    _stop: threading.Event = field(default_factory=threading.Event)
    _abort: threading.Event = field(default_factory=threading.Event)
    _fault_records: list[FaultRecord] = field(default_factory=list)
    _notes: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _t0_wall: float = field(default=0.0, init=False)
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

    def _managed(self) -> dict[str, int]:
        pools = {"training": self.scenario.workers.training, "planning": self.scenario.workers.planning}
        return {k: p.count for k, p in pools.items() if p is not None and p.count > 0 and k in self.scenario.kinds()}

    def _worker_commands(self, topics: dict[str, JobTopics]) -> dict[str, WorkerCommand]:
        s = self.settings
        out: dict[str, WorkerCommand] = {}
        for kind in self._managed():
            pool = getattr(self.scenario.workers, kind)
            prefix = getattr(s, f"worker_env_prefix_{kind}")
            env = base_environment()
            env.update(
                {
                    "KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
                    "REDIS_URL": s.redis_url,
                    f"{prefix}TOPIC_PREFIX": s.topic_prefix,
                    f"{prefix}TOPIC_PARTITIONS": str(s.topic_partitions),
                    f"{prefix}RENDER_PLOTS": "true" if pool.render_plots else "false",
                    f"{prefix}SERVICE_NAME": f"sim-{kind}-worker",
                    # Each worker serves health and metrics on a free port of its own (see WorkerCommand).
                    f"{prefix}HOST": "127.0.0.1",
                    "LOG_LEVEL": "WARNING",
                }
            )
            own: SecretStr | None = getattr(s, f"worker_database_url_{kind}")
            if own is not None:
                # The worker's role's URL carries its password; the simulator's own PGPASSWORD is not for it.
                env.pop("PGPASSWORD", None)
                env["DATABASE_URL"] = own.get_secret_value()
            elif s.database_url:
                env["DATABASE_URL"] = s.database_url
            env.update(pool.env)
            argv = resolve_command(getattr(s, f"worker_command_{kind}"))
            out[kind] = WorkerCommand(
                kind, argv, env, instance_variable=f"{prefix}INSTANCE_ID", port_variable=f"{prefix}PORT"
            )
        return out

    # ---- the run -----------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Check every part the scenario needs is up, and create the job topics; PreflightError names what is not."""
        if self._prepared:
            return
        self._phase("preflight")
        sc = self.scenario
        topics = self._topics()
        groups = {kind: self._group(t) for kind, t in topics.items()}
        managed = self._managed()
        controlled = set(managed)
        if self.worker_control is not None and not managed:
            controlled |= set(self.worker_control.kinds())
        preflight.check(
            self.settings,
            sc,
            worker_groups=groups,
            managed=set(managed),
            controlled=controlled,
            has_server_control=self.servers is not None,
            members=lambda names: group_members(self.settings, names),
            rental_needed=(self.rental.problems if self.rental is not None else _no_rental(sc)),
        )
        if managed:
            self._commands = self._worker_commands(topics)
        for t in topics.values():
            ensure_topics(self.settings, t.specs())
        self._prepared = True

    def run(self) -> RunReport:
        """Run the scenario and return its report (also written as report.json and report.html)."""
        self.prepare()
        sc = self.scenario
        plan = build_plan(sc)
        topics = self._topics()
        groups = {kind: self._group(t) for kind, t in topics.items()}
        managed = self._managed()
        self.out_dir.mkdir(parents=True, exist_ok=True)

        native: NativeWorkers | None = None
        if managed:
            native = NativeWorkers(
                self._commands,
                managed,
                self.out_dir / "workers",
                restart_delay_s=sc.workers.restart_delay_s,
                on_event=self._note,
            )
            self.worker_control = native
        collector = Collector(
            self.settings,
            results={t.results: kind for kind, t in topics.items()},
            dead_letters=[t.jobs + DLQ_SUFFIX for t in topics.values()]
            + [c + DLQ_SUFFIX for c in [self._commands_topic()] if c is not None],
            events=self.rental.event_topics if self.rental is not None and sc.has_rental() else [],
        )
        lag = LagSampler(self.settings, {groups[k]: [topics[k].jobs] for k in topics}, sc.audit.lag_interval_s)
        publisher = Publisher(self.settings, delivery_timeout_s=self.settings.publish_timeout_s)
        started_at = datetime.now(UTC)
        t0 = time.time()
        settled = False
        load_s = settle_s = 0.0
        try:
            if native is not None:
                self._phase("starting workers")
                native.start()
                self._await_members(native, groups, managed)
            collector.begin()
            lag.start()
            if self.rental is not None and sc.has_rental():
                self._phase("rental setup")
                self.rental.setup(sc)
            self._phase("load")
            self._execute(plan, topics, publisher)
            t0 = self._t0_wall
            load_s = time.time() - t0
            self._phase("settling")
            settle_started = time.time()
            settled = self._settle(publisher, collector, groups, {groups[k]: [topics[k].jobs] for k in topics})
            settle_s = time.time() - settle_started
        finally:
            lag.stop()
            collector.stop()
            publisher.close()
            if native is not None:
                self._phase("stopping workers")
                # Inside the contract's 30 s when the simulator itself is being stopped.
                native.stop(timeout_s=15 if self._abort.is_set() else 35)
        self._phase("auditing")
        report = self._report(plan, publisher, collector, lag, t0, started_at, load_s, settle_s, settled)
        (self.out_dir / "report.json").write_text(report.model_dump_json(indent=2))
        write_html(report, self.out_dir / "report.html")
        self._phase("passed" if report.passed else "failed")
        return report

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

    def _execute(self, plan: Plan, topics: dict[str, JobTopics], publisher: Publisher) -> None:
        """Dispatch every planned action, duplicate, garbage message and fault at its time."""
        sc = self.scenario
        job_ids = [str(uuid.uuid4()) for _ in plan.jobs]
        queue: list[tuple[float, int, Callable[[], None]]] = []
        seq = 0

        def at(when: float, action: Callable[[], None]) -> None:
            nonlocal seq
            heapq.heappush(queue, (when, seq, action))
            seq += 1

        for job in plan.jobs:
            action = sc.mix[job.mix_index]
            assert isinstance(action, TrainingAction | PlanningAction)
            entry = action.pool[job.pool_index]
            spec: BaseModel = entry.spec
            if job.seed is not None:
                spec = spec.model_copy(update={"seed": job.seed})
            job_id = job_ids[job.index]
            submit = _bind(self._submit, publisher, job.kind, topics[job.kind].jobs, job_id, spec, entry.large)
            at(job.submit_at_s, submit)
            if job.duplicate_after_s is not None:
                at(job.submit_at_s + job.duplicate_after_s, _bind(publisher.duplicate, job_id))
        for g in plan.garbage:
            key = f"garbage-{self.run_id}-{g.index}"
            topic = topics[g.kind].jobs if g.kind in topics else self._commands_topic()
            if topic is None:
                continue
            at(
                g.at_s,
                _bind(
                    publisher.garbage,
                    g.kind,
                    topic,
                    key,
                    g.flavour,
                    REQUEST_TYPES[g.kind],
                    g.payload_seed,
                ),
            )
        journeys = ThreadPoolExecutor(max_workers=32, thread_name_prefix="sim-journey")
        fault_threads: list[threading.Thread] = []
        if self.rental is not None:
            rental = self.rental
            for j in plan.journeys:
                rental_action = sc.mix[j.mix_index]
                assert isinstance(rental_action, RentalAction)
                at(j.at_s, _bind(journeys.submit, self._journey, rental, j, rental_action))
        elif plan.journeys:
            self._note(f"{len(plan.journeys)} rental journeys skipped: no rental driver")
        for f in plan.faults:
            at(f.at_s, _bind(self._start_fault, f, fault_threads))
        t0, self._t0_wall = time.monotonic(), time.time()
        try:
            while queue and not self._stop.is_set():
                when, _, due = queue[0]
                delay = t0 + when - time.monotonic()
                if delay > 0:
                    self._stop.wait(min(delay, 0.5))
                    self.status.elapsed_s = time.monotonic() - t0
                    continue
                heapq.heappop(queue)
                try:
                    due()
                except Exception as exc:
                    self._note(f"action failed at {when:.1f} s: {type(exc).__name__}: {exc}")
            # The load lasts the scenario's duration even when the last action came earlier.
            self._stop.wait(max(0.0, t0 + sc.duration_s - time.monotonic()))
        finally:
            journeys.shutdown(wait=True)
            for thread in fault_threads:
                thread.join()

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

    # ---- faults ------------------------------------------------------------------------------------

    def _start_fault(self, planned: PlannedFault, threads: list[threading.Thread]) -> None:
        thread = threading.Thread(target=self._fault, args=(planned,), name=f"sim-fault-{planned.index}", daemon=True)
        threads.append(thread)
        thread.start()

    def _fault(self, planned: PlannedFault) -> None:
        fault = planned.fault
        started = time.time() - self._t0_wall
        record = FaultRecord(kind=fault.kind, at_s=started, target=getattr(fault, "target", None))
        try:
            record.detail = self._inject(planned)
        except Exception as exc:
            record.ok = False
            record.detail = f"{type(exc).__name__}: {exc}"
            log.exception("fault %s failed", fault.kind)
        record.end_s = time.time() - self._t0_wall
        with self._lock:
            self._fault_records.append(record)
        self.status.faults += 1

    def _inject(self, planned: PlannedFault) -> str:
        fault = planned.fault
        if isinstance(fault, KillWorkerFault):
            if self.worker_control is None:
                raise RuntimeError("no workers under control")
            return "SIGKILL " + self.worker_control.kill(None if fault.target == "any" else fault.target, planned.pick)
        if isinstance(fault, BrokerRestartFault | RedisOutageFault):
            if self.servers is None:
                raise RuntimeError("no control of the servers")
            kafka = isinstance(fault, BrokerRestartFault)
            (self.servers.stop_kafka if kafka else self.servers.stop_redis)()
            stopped = time.monotonic()
            time.sleep(fault.down_s)
            (self.servers.start_kafka if kafka else self.servers.start_redis)()
            what = "broker" if kafka else "Redis"
            return f"{what} stopped, down {fault.down_s:g} s, back after {time.monotonic() - stopped:.1f} s"
        if isinstance(fault, PauseWorkerFault):
            if self.worker_control is None:
                raise RuntimeError("no workers under control")
            which, resume = self.worker_control.pause_one(None if fault.target == "any" else fault.target, planned.pick)
            try:
                time.sleep(fault.duration_s)
            finally:
                resume()
            return f"{which} frozen for {fault.duration_s:g} s"
        assert isinstance(fault, SlowConsumerFault)
        if self.worker_control is None:
            raise RuntimeError("no workers under control")
        kind = None if fault.target == "any" else fault.target
        end = time.monotonic() + fault.duration_s
        cycles = 0
        frozen: list[str] = []
        try:
            while time.monotonic() < end:
                frozen = self.worker_control.freeze(kind, True)
                time.sleep(fault.duty * fault.period_s)
                self.worker_control.freeze(kind, False)
                time.sleep((1 - fault.duty) * fault.period_s)
                cycles += 1
        finally:
            self.worker_control.freeze(kind, False)
        return f"{len(frozen)} worker(s) frozen {fault.duty:.0%} of every {fault.period_s:g} s, {cycles} cycles"

    # ---- settling ----------------------------------------------------------------------------------

    def _settle(
        self, publisher: Publisher, collector: Collector, groups: dict[str, str], group_topics: dict[str, list[str]]
    ) -> bool:
        """Wait until every accepted job has a result, all garbage is dead-lettered and the workers caught up."""
        deadline = time.monotonic() + self.scenario.audit.settle_timeout_s
        publisher.flush(min(self.settings.publish_timeout_s, self.scenario.audit.settle_timeout_s))
        # Its own clients: kafka-python's are not thread-safe, and the sampler's thread is using its own.
        probe = LagSampler(self.settings, group_topics, 1.0)
        try:
            return self._await_settled(publisher, collector, probe, groups, deadline)
        finally:
            probe.stop()

    def _await_settled(
        self, publisher: Publisher, collector: Collector, lag: LagSampler, groups: dict[str, str], deadline: float
    ) -> bool:
        waiting = "nothing checked yet"
        while time.monotonic() < deadline and not self._abort.is_set():
            waiting = self._still_waiting_for(publisher, collector, lag, groups)
            self.status.message = waiting
            if not waiting:
                return True
            self._abort.wait(0.5)
        if self._abort.is_set():
            self._note(f"stopped before the system settled: {waiting}")
            return False
        self._note(f"the system did not settle within {self.scenario.audit.settle_timeout_s:g} s: {waiting}")
        for group in groups.values():
            self._note(f"group {group}: {lag.describe(group)}")
            stuck = {tp: p for tp, p in (lag.positions(group) or {}).items() if p[0] < p[1]}
            if stuck:
                with contextlib.suppress(Exception):
                    ids = ids_between(self.settings, stuck)
                    done, _ = collector.has_results(ids)
                    self._note(f"group {group}: {len(ids)} record(s) past its committed offsets, {done} with a result")
        return False

    def _still_waiting_for(
        self, publisher: Publisher, collector: Collector, lag: LagSampler, groups: dict[str, str]
    ) -> str:
        """What the run still waits for before nothing more can come out ("" once settled)."""
        jobs_done, jobs = collector.has_results(publisher.accepted_jobs())
        garbage_done, garbage = collector.has_dead_letters(publisher.accepted_garbage())
        self.status.results = jobs_done
        pending = publisher.pending()
        if pending or jobs_done < jobs or garbage_done < garbage:
            return (
                f"{jobs_done} of {jobs} jobs with a result, {garbage_done} of {garbage} garbage dead-lettered, "
                f"{pending} publish(es) unacknowledged"
            )
        if self.rental is not None and self.scenario.has_rental() and not self._rental_settled(collector):
            return "rental events not all relayed"
        # Every publish (duplicates too) consumed and committed by the workers: nothing more can come out.
        lags = {g: lag.positions(g) for g in groups.values()}
        behind = {g: {tp: p for tp, p in (found or {}).items() if p[0] < p[1]} for g, found in lags.items()}
        if any(found is None for found in lags.values()) or any(behind.values()):
            return "worker groups not caught up: " + "; ".join(
                f"{g} " + ("unreadable" if lags[g] is None else _behind(behind[g]) or "caught up") for g in lags
            )
        if not collector.caught_up():
            return "the audit has not read to the end of the results topics yet"
        return ""

    def _rental_settled(self, collector: Collector) -> bool:
        assert self.rental is not None
        try:
            return self.rental.settled(collector.snapshot()[3])
        except Exception as exc:  # the database may be briefly unreachable; settling tries again
            log.warning("rental settle check failed: %s", exc)
            return False

    # ---- the report --------------------------------------------------------------------------------

    def _report(
        self,
        plan: Plan,
        publisher: Publisher,
        collector: Collector,
        lag: LagSampler,
        t0: float,
        started_at: datetime,
        load_s: float,
        settle_s: float,
        settled: bool,
    ) -> RunReport:
        sc = self.scenario
        sent = publisher.sent_jobs()
        results, dead, corrupt, events = collector.snapshot()
        rental = None
        if self.rental is not None and sc.has_rental():
            try:
                rental = self.rental.findings(events)
            except Exception as exc:
                rental = RentalFindings(checked=True, unavailable=f"{type(exc).__name__}: {exc}")
        faults = sorted(self._fault_records, key=lambda f: f.at_s)
        planned_faults = [f.fault.kind for f in plan.faults]
        extra = [
            Check(
                name="every scheduled fault was injected",
                passed=len(faults) == len(planned_faults) and all(f.ok for f in faults),
                detail=f"{sum(f.ok for f in faults)} of {len(planned_faults)} injected"
                + "".join(f"; {f.kind} at {f.at_s:.1f} s: {f.detail}" for f in faults if not f.ok),
            )
        ]
        audit = reconcile(
            sent,
            results,
            publisher.sent_garbage(),
            dead,
            corrupt,
            rental,
            AuditPolicy(expect_success=sc.audit.expect_success, foreign_results=sc.audit.foreign_results),
            extra,
        )
        end = max([t0 + load_s, *(r.at for r in results)])
        bucket = bucket_size(end - t0)
        first: dict[str, float] = {}
        for r in sorted(results, key=lambda r: r.at):
            first.setdefault(r.job_id, r.at)
        by_id = {j.job_id: j for j in sent}
        kinds = sorted({j.kind for j in sent})
        n = len(rate_series([], t0, end, bucket))
        latencies = [(at, at - by_id[job].submitted_at) for job, at in first.items() if job in by_id]
        throughput = Throughput(
            bucket_s=bucket,
            t_s=[k * bucket for k in range(n)],
            submitted={k: rate_series((j.submitted_at for j in sent if j.kind == k), t0, end, bucket) for k in kinds},
            completed={
                k: rate_series(
                    (at for job, at in first.items() if job in by_id and by_id[job].kind == k), t0, end, bucket
                )
                for k in kinds
            },
            latency_p50=bucket_percentiles(latencies, t0, end, bucket, 50),
            latency_p95=bucket_percentiles(latencies, t0, end, bucket, 95),
            latency_p99=bucket_percentiles(latencies, t0, end, bucket, 99),
        )
        done = [at for job, at in first.items() if job in by_id]
        span = (max(done) - t0) if done else 0.0
        lag_series = []
        samples = lag.snapshot()
        for group in sorted({s.group for s in samples}):
            mine = [s for s in samples if s.group == group]
            lag_series.append(LagSeries(group=group, t_s=[s.at - t0 for s in mine], lag=[s.lag for s in mine]))
        workers = self.worker_control.stats() if self.worker_control is not None else {}
        return RunReport(
            run_id=self.run_id,
            scenario=sc.name,
            description=sc.description,
            seed=sc.seed,
            plan_digest=plan.digest(),
            started_at=started_at.isoformat(),
            finished_at=datetime.now(UTC).isoformat(),
            duration_s=sc.duration_s,
            load_s=load_s,
            settle_s=settle_s,
            settled=settled,
            planned=Planned(
                jobs={k: plan.count(k) for k in sc.kinds()},
                journeys=len(plan.journeys),
                duplicates=plan.duplicates,
                garbage=len(plan.garbage),
                faults={k: planned_faults.count(k) for k in dict.fromkeys(planned_faults)},
            ),
            audit=audit,
            throughput=throughput,
            jobs_per_s=len(done) / span if span > 0 else 0.0,
            lag=lag_series,
            faults=faults,
            workers=workers,
            rental=_rental_dict(rental),
            notes=list(self._notes)
            + ([f"audit consumer reconnected {collector.errors} time(s)"] if collector.errors else []),
        )


def _behind(partitions: dict[Any, tuple[int, int]]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}] committed {done} of {end}" for tp, (done, end) in partitions.items())


def _bind(fn: Callable[..., Any], *args: Any) -> Callable[[], None]:
    def call() -> None:
        fn(*args)

    return call


def _no_rental(scenario: Scenario) -> Callable[[], list[str]] | None:
    if not scenario.has_rental():
        return None
    return lambda: ["the scenario has rental journeys but no rental driver was given"]


def _rental_dict(rental: RentalFindings | None) -> dict[str, Any] | None:
    if rental is None:
        return None
    return {
        "journeys": rental.journeys,
        "completed": rental.completed,
        "steps": rental.steps,
        "conflicts": rental.conflicts,
        "commands": rental.commands,
        "errors": rental.errors[:50],
        "leases": rental.leases,
        "overlapping_leases": rental.overlapping_leases[:50],
        "events_seen": rental.events_seen,
        "event_mismatches": rental.event_mismatches[:50],
        "unavailable": rental.unavailable,
    }
