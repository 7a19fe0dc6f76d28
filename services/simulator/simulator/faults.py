"""The faults of a run: each planned fault is injected on its own thread and recorded as it happened.

A fault undoes itself before it returns: a stopped server is started again, a frozen worker thawed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from simulator.cluster import ClusterFaults
from simulator.domain.plan import PlannedFault
from simulator.domain.report import FaultRecord
from simulator.domain.scenario import (
    CLUSTER_FAULTS,
    BrokerRestartFault,
    KillWorkerFault,
    PauseWorkerFault,
    RedisOutageFault,
    SlowConsumerFault,
)
from simulator.servers import ServerControl
from simulator.workers import WorkerControl

log = logging.getLogger(__name__)


@dataclass
class FaultInjector:
    """Injects planned faults into the servers and workers; `records` says what happened, in start order."""

    servers: ServerControl | None
    workers: WorkerControl | None
    cluster: ClusterFaults | None = None
    on_recorded: Callable[[FaultRecord], None] = lambda record: None
    t0_wall: float = 0.0
    _records: list[FaultRecord] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, planned: PlannedFault) -> None:
        """Inject `planned` on a thread of its own, so a long outage does not hold the schedule."""
        thread = threading.Thread(target=self._run, args=(planned,), name=f"sim-fault-{planned.index}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def join(self) -> None:
        """Wait for every started fault to undo itself."""
        for thread in self._threads:
            thread.join()

    def records(self) -> list[FaultRecord]:
        """The faults injected so far, by start time."""
        with self._lock:
            return sorted(self._records, key=lambda f: f.at_s)

    def _run(self, planned: PlannedFault) -> None:
        fault = planned.fault
        record = FaultRecord(kind=fault.kind, at_s=time.time() - self.t0_wall, target=getattr(fault, "target", None))
        try:
            record.detail = self._inject(planned)
        except Exception as exc:
            record.ok = False
            record.detail = f"{type(exc).__name__}: {exc}"
            log.exception("fault %s failed", fault.kind)
        record.end_s = time.time() - self.t0_wall
        with self._lock:
            self._records.append(record)
        self.on_recorded(record)

    def _inject(self, planned: PlannedFault) -> str:
        fault = planned.fault
        if isinstance(fault, BrokerRestartFault | RedisOutageFault):
            return self._outage(fault)
        if isinstance(fault, CLUSTER_FAULTS):
            if self.cluster is None:
                raise RuntimeError("no control of a Kafka cluster behind fault proxies")
            return self.cluster.inject(fault, planned.pick)
        workers = self._worker_control()
        if isinstance(fault, KillWorkerFault):
            return "SIGKILL " + workers.kill(_kind(fault.target), planned.pick)
        if isinstance(fault, PauseWorkerFault):
            return self._pause(workers, fault, planned.pick)
        assert isinstance(fault, SlowConsumerFault)
        return self._slow_down(workers, fault)

    def _worker_control(self) -> WorkerControl:
        if self.workers is None:
            raise RuntimeError("no workers under control")
        return self.workers

    def _outage(self, fault: BrokerRestartFault | RedisOutageFault) -> str:
        if self.servers is None:
            raise RuntimeError("no control of the servers")
        kafka = isinstance(fault, BrokerRestartFault)
        (self.servers.stop_kafka if kafka else self.servers.stop_redis)()
        stopped = time.monotonic()
        time.sleep(fault.down_s)
        (self.servers.start_kafka if kafka else self.servers.start_redis)()
        what = "broker" if kafka else "Redis"
        return f"{what} stopped, down {fault.down_s:g} s, back after {time.monotonic() - stopped:.1f} s"

    @staticmethod
    def _pause(workers: WorkerControl, fault: PauseWorkerFault, pick: float) -> str:
        which, resume = workers.pause_one(_kind(fault.target), pick)
        try:
            time.sleep(fault.duration_s)
        finally:
            resume()
        return f"{which} frozen for {fault.duration_s:g} s"

    @staticmethod
    def _slow_down(workers: WorkerControl, fault: SlowConsumerFault) -> str:
        kind = _kind(fault.target)
        end = time.monotonic() + fault.duration_s
        cycles = 0
        frozen: list[str] = []
        try:
            while time.monotonic() < end:
                frozen = workers.freeze(kind, True)
                time.sleep(fault.duty * fault.period_s)
                workers.freeze(kind, False)
                time.sleep((1 - fault.duty) * fault.period_s)
                cycles += 1
        finally:
            workers.freeze(kind, False)
        return f"{len(frozen)} worker(s) frozen {fault.duty:.0%} of every {fault.period_s:g} s, {cycles} cycles"


def _kind(target: str) -> str | None:
    """The worker kind a fault targets; None for any."""
    return None if target == "any" else target
