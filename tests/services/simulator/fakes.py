"""Fakes for the simulator's unit tests: a finished report built from plain records, a simulation double, and the
Docker API (containers, the `cluster` profile's nodes and networks) and Toxiproxy API the Compose controls drive."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.domain.audit import DeadLetterSeen, GarbageSent, ResultSeen, SentJob, reconcile
from simulator.domain.recovery import recovery_summary
from simulator.domain.report import FaultRecord, LagSeries, Planned, RunReport, Throughput, WorkerStats
from simulator.preflight import PreflightError
from simulator.render import write_html
from simulator.run import Status


def report(*, passed: bool = True, name: str = "fake") -> RunReport:
    """A small report: two kinds, one fault of each timed kind, lag series; lost one job when not `passed`."""
    sent = [
        SentJob(f"j{i}", "training" if i % 2 else "planning", 1000.0 + i, True, large=i in (3, 4, 6)) for i in range(20)
    ]
    results = [
        ResultSeen(j.job_id, j.kind, "completed", j.submitted_at + 0.5 + i / 10, f"{j.kind}.results", 0, i)
        for i, j in enumerate(sent)
        if passed or i
    ]
    garbage = [GarbageSent("g0", "training", "bytes", "training.jobs", True)]
    dead = [DeadLetterSeen("g0", "training.jobs.dlq", "training.jobs", "EnvelopeError", None, 1001.0)]
    audit = reconcile(sent, results, garbage, dead)
    t = [float(k) for k in range(25)]
    lag = [LagSeries(group="training.jobs-worker", t_s=t, lag=[1] * 4 + [6, 3] + [1] * 4 + [None] + [0] * 14)]
    faults = [
        FaultRecord(kind="kill_worker", at_s=3, end_s=3.1, target="training", detail="SIGKILL training worker 0"),
        FaultRecord(kind="broker_restart", at_s=5, end_s=12, detail="broker stopped"),
        FaultRecord(kind="redis_outage", at_s=13, end_s=15, detail="Redis stopped"),
        FaultRecord(kind="slow_consumer", at_s=16, end_s=18, target="any", detail="frozen", ok=passed),
    ]
    return RunReport(
        run_id="abc123",
        scenario=name,
        seed=1,
        plan_digest="f" * 64,
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:30+00:00",
        duration_s=20,
        load_s=20,
        settle_s=5,
        settled=True,
        planned=Planned(jobs={"training": 10, "planning": 10}, journeys=0, duplicates=0, garbage=1, faults={}),
        audit=audit,
        throughput=Throughput(
            bucket_s=1,
            t_s=t,
            submitted={"training": [0.5] * 25, "planning": [0.5] * 25},
            completed={"training": [0.5] * 25, "planning": [0.4] * 25},
            latency_p50=[0.6] * 24 + [None],
            latency_p95=[1.2] * 24 + [None],
            latency_p99=[2.0] * 24 + [None],
        ),
        jobs_per_s=0.8,
        lag=lag,
        faults=faults,
        recovery=recovery_summary(faults, lag),
        workers={"training": WorkerStats(managed=1, starts=2, restarts=1, killed=1)},
        notes=["a <note> with markup"],
    )


@dataclass
class FakeSimulation:
    """Stands in for Simulation in the API: prepares (or refuses), runs until released, returns a report."""

    out_dir: Path
    run_id: str = "run0001"
    unreachable: list[str] = field(default_factory=list)
    passed: bool = True
    status: Status = field(default_factory=Status)
    release: threading.Event = field(default_factory=threading.Event)
    stopped: bool = False
    settle: bool = True
    t0: float = 0.0
    faults: list[FaultRecord] = field(default_factory=list)

    def prepare(self) -> None:
        if self.unreachable:
            raise PreflightError(self.unreachable)

    def run(self) -> RunReport:
        self.status.phase = "load"
        self.release.wait(10)
        done = report(passed=self.passed)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "report.json").write_text(done.model_dump_json())
        write_html(done, self.out_dir / "report.html")
        self.status.phase = "passed" if done.passed else "failed"
        return done

    def faults_so_far(self) -> tuple[float, list[FaultRecord]]:
        return self.t0, list(self.faults)

    def stop(self, *, settle: bool = True) -> None:
        self.stopped = True
        self.settle = settle
        self.release.set()


@dataclass
class FakeContainer:
    """A Compose container as the Docker SDK gives it: each call it gets is recorded, and changes its status."""

    name: str
    service: str
    status: str = "running"
    calls: list[str] = field(default_factory=list)

    def kill(self, signal: str) -> None:
        self.calls.append(f"kill {signal}")
        self.status = "exited"

    def start(self) -> None:
        self.calls.append("start")
        self.status = "running"

    def stop(self, timeout: int) -> None:
        self.calls.append(f"stop {timeout}")
        self.status = "exited"

    def pause(self) -> None:
        self.calls.append("pause")
        self.status = "paused"

    def unpause(self) -> None:
        self.calls.append("unpause")
        self.status = "running"

    def reload(self) -> None:
        pass


@dataclass
class FakeDocker:
    """The Docker SDK's client: its containers, listed by Compose service label and status as queried."""

    items: list[FakeContainer]
    queries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def containers(self) -> FakeDocker:
        return self

    def list(self, all: bool = False, filters: dict[str, Any] | None = None) -> list[FakeContainer]:
        filters = filters or {}
        self.queries.append(filters)
        labels = dict(label.split("=", 1) for label in filters.get("label", []))
        status = filters.get("status")
        return [
            c
            for c in self.items
            if labels.get("com.docker.compose.service") == c.service and (status is None or c.status == status)
        ]


@dataclass
class FakeNode(FakeContainer):
    """A container with networks and a health check that turns healthy after `unhealthy_reloads` reloads."""

    unhealthy_reloads: int = 0
    networks: dict[str, list[str]] = field(default_factory=lambda: {"quartet_default": ["kafka", "kafka-1"]})

    @property
    def attrs(self) -> dict[str, Any]:
        health = "healthy" if self.unhealthy_reloads <= 0 and self.status == "running" else "starting"
        nets = {name: {"Aliases": aliases} for name, aliases in self.networks.items()}
        return {"State": {"Health": {"Status": health}}, "NetworkSettings": {"Networks": nets}}

    def reload(self) -> None:
        self.unhealthy_reloads -= 1

    @property
    def id(self) -> str:
        return f"id-{self.name}"


@dataclass
class FakeNetwork:
    """A Docker network that records each container disconnected from it or connected to it."""

    name: str
    calls: list[str]

    def disconnect(self, container: FakeNode) -> None:
        self.calls.append(f"disconnect {container.name} from {self.name}")
        container.networks.pop(self.name)

    def connect(self, container: FakeNode, aliases: list[str]) -> None:
        self.calls.append(f"connect {container.name} to {self.name} as {aliases}")
        container.networks[self.name] = aliases


@dataclass
class FakeNetworks:
    """The Docker SDK's networks: each one got shares one list of calls."""

    calls: list[str] = field(default_factory=list)

    def get(self, name: str) -> FakeNetwork:
        return FakeNetwork(name, self.calls)


@dataclass
class FakeDockerWithNetworks(FakeDocker):
    """Containers and networks."""

    networks: FakeNetworks = field(default_factory=FakeNetworks)


@dataclass
class FakeProxies:
    """The Toxiproxy API's toxics, by proxy, as a ToxiproxyClient changes them, and each change in turn."""

    toxics: dict[str, dict[str, tuple[str, str, dict[str, Any]]]] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)

    def add_toxic(self, proxy: str, name: str, kind: str, attributes: dict[str, Any], stream: str) -> None:
        assert name not in self.toxics.setdefault(proxy, {}), f"{name} twice on {proxy}"
        self.toxics[proxy][name] = (kind, stream, attributes)
        self.changes.append(f"add {kind} {name} on {proxy}")

    def remove_toxic(self, proxy: str, name: str, *, missing_ok: bool = False) -> None:
        if name not in self.toxics.get(proxy, {}) and missing_ok:
            return
        del self.toxics[proxy][name]
        self.changes.append(f"remove {name} from {proxy}")


def compose_docker(*extra: FakeNode) -> tuple[FakeDockerWithNetworks, list[FakeNode]]:
    """The `cluster` profile's three nodes (and `extra` containers) on a fake Docker API."""
    nodes = [FakeNode(f"quartet-kafka-{n}-1", f"kafka-{n}") for n in (1, 2, 3)]
    return FakeDockerWithNetworks([*nodes, *extra]), nodes
