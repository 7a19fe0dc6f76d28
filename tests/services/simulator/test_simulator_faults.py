"""Faults injected on their own threads, recorded as they happened, and always undone before they return."""

from __future__ import annotations

from collections.abc import Callable

from simulator.domain.plan import PlannedFault
from simulator.domain.report import FaultRecord, WorkerStats
from simulator.domain.scenario import (
    BrokerRestartFault,
    KillWorkerFault,
    PauseWorkerFault,
    RedisOutageFault,
    SlowConsumerFault,
    TimedFault,
)
from simulator.faults import FaultInjector


class Servers:
    """Records the order in which the servers were stopped and started."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def stop_kafka(self) -> None:
        self.calls.append("stop kafka")

    def start_kafka(self) -> None:
        self.calls.append("start kafka")

    def stop_redis(self) -> None:
        self.calls.append("stop redis")

    def start_redis(self) -> None:
        self.calls.append("start redis")


class Workers:
    """Workers under control that record what the faults did to them."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def kinds(self) -> list[str]:
        return ["training"]

    def kill(self, kind: str | None, pick: float) -> str:
        self.calls.append(f"kill {kind}")
        return "training-0"

    def freeze(self, kind: str | None, frozen: bool) -> list[str]:
        self.calls.append(f"{'freeze' if frozen else 'thaw'} {kind}")
        return ["training-0"]

    def pause_one(self, kind: str | None, pick: float) -> tuple[str, Callable[[], None]]:
        self.calls.append(f"pause {kind}")
        return "training-1", lambda: self.calls.append("resume")

    def stats(self) -> dict[str, WorkerStats]:
        return {}


def _inject(injector: FaultInjector, *faults: TimedFault) -> list[FaultRecord]:
    for index, fault in enumerate(faults):
        injector.start(PlannedFault(index=index, at_s=0.0, fault=fault, pick=0.5))
    injector.join()
    return injector.records()


def test_a_broker_restart_and_a_redis_outage_start_what_they_stopped() -> None:
    servers = Servers()
    seen: list[FaultRecord] = []
    injector = FaultInjector(servers, None, on_recorded=seen.append)
    broker = _inject(injector, BrokerRestartFault(kind="broker_restart", at_s=0, down_s=0))
    redis = _inject(injector, RedisOutageFault(kind="redis_outage", at_s=0, down_s=0))
    assert servers.calls == ["stop kafka", "start kafka", "stop redis", "start redis"]
    assert [r.ok for r in redis] == [True, True]
    assert broker[0].detail.startswith("broker stopped, down 0 s")
    assert len(seen) == 2


def test_worker_faults_kill_pause_and_slow_the_targeted_kind_and_thaw_it_afterwards() -> None:
    workers = Workers()
    records = _inject(FaultInjector(None, workers), KillWorkerFault(kind="kill_worker", at_s=0, target="training"))
    assert records[0].detail == "SIGKILL training-0"
    _inject(FaultInjector(None, workers), PauseWorkerFault(kind="pause_worker", at_s=0, duration_s=0.01))
    slow = SlowConsumerFault(kind="slow_consumer", at_s=0, duration_s=0.05, duty=0.5, period_s=0.02)
    _inject(FaultInjector(None, workers), slow)
    assert workers.calls[:3] == ["kill training", "pause None", "resume"]
    assert workers.calls[3] == "freeze None"
    assert workers.calls[-1] == "thaw None"


def test_a_fault_without_what_it_needs_is_recorded_as_failed() -> None:
    records = _inject(
        FaultInjector(None, None),
        KillWorkerFault(kind="kill_worker", at_s=0),
        BrokerRestartFault(kind="broker_restart", at_s=0, down_s=0),
    )
    assert sorted(r.detail for r in records) == [
        "RuntimeError: no control of the servers",
        "RuntimeError: no workers under control",
    ]
    assert not any(r.ok for r in records)
    assert all(r.end_s is not None for r in records)
