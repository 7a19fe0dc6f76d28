"""`quartet simulate capacity`: the capacity search run against the real system, and its report and plot.

The load is small training and planning jobs (the bundled job files) published at the rate the controller asks
for; each interval's achieved rate and p95 latency come from the results the collector read in it, and the lag
from the worker groups' committed offsets at its end.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import math
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

from jinja2 import Environment
from pydantic import BaseModel, Field
from quartet_contracts.topics import DLQ_SUFFIX
from quartet_shared.jobservice import JobTopics
from quartet_shared.topics import ensure_topics

from simulator.domain.capacity import CapacityParams, CapacitySearch, Observation, Phase, Step, Verdict
from simulator.domain.scenario import PlanningAction, TrainingAction, WorkerPool
from simulator.domain.stats import percentiles
from simulator.kafka_io import Collector, LagSampler, Publisher, group_members
from simulator.scenario_io import BUNDLED_DIR, parse_scenario
from simulator.settings import SimulatorSettings
from simulator.workers import NativeWorkers, WorkerCommand, worker_command

Kind = Literal["training", "planning"]
KINDS: tuple[Kind, ...] = ("training", "planning")
JOB_FILES = {"training": "jobs/training-linear.yaml", "planning": "jobs/planning-peaks.yaml"}
READY_TIMEOUT_S = 90.0
# How long the managed workers get to stop: the contract's 30 s after SIGTERM and a margin, then SIGKILL.
WORKERS_STOP_S = 35.0


class CapacityRun(CapacityParams):
    """The search's parameters plus what to load: job kinds and, optionally, workers the run starts itself."""

    kinds: tuple[Kind, ...] = Field(KINDS, min_length=1, description="Job kinds offered, in turn.")
    workers: int = Field(0, ge=0, le=16, description="Workers per kind the run starts; 0: the running system's.")


class CapacityReport(BaseModel):
    """The outcome of a search: the sustained rate, the latency at it, and every interval."""

    started_at: datetime
    params: CapacityRun
    verdict: Verdict
    steps: list[Step]

    @property
    def sustained_rate(self) -> float | None:
        """Jobs per second the system held (None: none held)."""
        return self.verdict.sustained_rate

    @property
    def p95_at_sustained_s(self) -> float | None:
        """The worst p95 latency of the final hold's intervals."""
        held = [s.p95_s for s in self._final_hold() if s.p95_s is not None]
        return max(held) if held else None

    def _final_hold(self) -> list[Step]:
        rate = self.sustained_rate
        hold = list(itertools.takewhile(lambda s: s.phase is Phase.HOLD and s.offered == rate, reversed(self.steps)))
        return hold[::-1]

    def summary(self) -> str:
        """A few lines a person reads."""
        rate = "none" if self.sustained_rate is None else f"{self.sustained_rate:.2f} jobs/s"
        p95 = "n/a" if self.p95_at_sustained_s is None else f"{self.p95_at_sustained_s:.2f} s"
        held = "held" if self.verdict.held else "not held"
        return (
            f"capacity: {rate} ({held}: {self.verdict.reason}); p95 latency at that rate {p95}; "
            f"{len(self.steps)} intervals of {self.params.interval_s:g} s"
        )


class Load(Protocol):
    """The system under search: offer a rate for a while, and say what came of it."""

    def interval(self, rate: float, seconds: float) -> Observation:
        """Offer `rate` jobs/s for `seconds`; the observation of that interval."""
        ...


Watch = Callable[[CapacitySearch], None]


def run_search(
    params: CapacityRun, load: Load, stop: threading.Event | None = None, watch: Watch | None = None
) -> CapacityReport:
    """Drive the controller against `load` until it ends, `max_duration_s` of wall-clock time pass, or `stop` is
    set; `watch` sees the controller before each interval and after each observation."""
    started = datetime.now(UTC)
    deadline = time.monotonic() + params.max_duration_s
    controller = CapacitySearch(params)
    stop = stop or threading.Event()
    for _ in range(params.max_intervals):
        if stop.is_set() or time.monotonic() >= deadline:
            break
        if watch is not None:
            watch(controller)
        observation = load.interval(controller.rate, params.interval_s)
        # An interval cut short by a stop says nothing about the system.
        if stop.is_set():
            break
        verdict = controller.observe(observation)
        if watch is not None:
            watch(controller)
        if verdict.done:
            break
    reason = "stopped before a rate held" if stop.is_set() else "out of time before a rate held"
    verdict = controller.end(reason)
    if watch is not None:
        watch(controller)
    return CapacityReport(started_at=started, params=params, verdict=verdict, steps=controller.steps)


HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Capacity search</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:2px 8px}</style></head><body>
<h1>Capacity search</h1>
<p><strong>{{ summary }}</strong></p>
<img alt="offered rate, achieved rate and p95 latency over time" src="data:image/png;base64,{{ png }}">
<table><tr><th>t (s)</th><th>phase</th><th>offered jobs/s</th><th>achieved jobs/s</th><th>p95 (s)</th>
<th>lag</th><th>signal</th><th>move</th></tr>
{% for s in steps %}<tr><td>{{ s.t_s }}</td><td>{{ s.phase.value }}</td><td>{{ "%.2f"|format(s.offered) }}</td>
<td>{{ "%.2f"|format(s.achieved) }}</td><td>{{ "–" if s.p95_s is none else "%.3f"|format(s.p95_s) }}</td>
<td>{{ "–" if s.lag is none else s.lag }}</td><td>{{ s.signal.value }}</td><td>{{ s.move.value }}</td></tr>
{% endfor %}</table></body></html>
"""


def write_report(report: CapacityReport, out_dir: Path) -> Path:
    """capacity.json, capacity.png (offered, achieved and p95 over time) and capacity.html; the plot's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "capacity.json").write_text(report.model_dump_json(indent=2))
    path = _plot(report, out_dir / "capacity.png")
    png = base64.b64encode(path.read_bytes()).decode()
    page = Environment(autoescape=True).from_string(HTML)
    (out_dir / "capacity.html").write_text(page.render(summary=report.summary(), png=png, steps=report.steps))
    return path


def _plot(report: CapacityReport, path: Path) -> Path:
    # Imported here, as the report renderer does: matplotlib's first import is slow on a loaded machine.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s.t_s for s in report.steps]
    fig, rates = plt.subplots(figsize=(9, 4.5))
    try:
        rates.step(t, [s.offered for s in report.steps], where="pre", label="offered jobs/s")
        rates.plot(t, [s.achieved for s in report.steps], marker="o", label="achieved jobs/s")
        if report.sustained_rate is not None:
            rates.axhline(report.sustained_rate, linestyle=":", color="grey", label="sustained")
        rates.set_xlabel("time (s)")
        rates.set_ylabel("jobs per second")
        latency = rates.twinx()
        latency.plot(
            t,
            [math.nan if s.p95_s is None else s.p95_s for s in report.steps],
            color="tab:red",
            marker=".",
            label="p95 latency",
        )
        latency.set_ylabel("p95 latency (s)")
        lines = rates.get_legend_handles_labels()
        more = latency.get_legend_handles_labels()
        rates.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize="small")
        rates.set_title(report.summary().split(";")[0])
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


class KafkaLoad:
    """Small jobs published evenly over each interval; results, latency and lag read back from Kafka."""

    def __init__(
        self, settings: SimulatorSettings, kinds: tuple[str, ...], stop: threading.Event | None = None
    ) -> None:
        self._stop = stop or threading.Event()
        self._topics = {k: JobTopics.of(k, settings.topic_prefix) for k in kinds}
        self.groups = {f"{t.jobs}{settings.worker_group_suffix}": [t.jobs] for t in self._topics.values()}
        self._specs = job_specs(kinds)
        self._turn = itertools.cycle(kinds)
        # A seed of its own per job, from a random start: a repeated spec is answered from the results cache
        # without computing, and the search would measure the cache (and leave its plotless results for others).
        self._seeds = itertools.count(secrets.randbelow(2**31))
        self.publisher = Publisher(settings, delivery_timeout_s=settings.publish_timeout_s)
        self.collector = Collector(
            settings,
            results={t.results: k for k, t in self._topics.items()},
            dead_letters=[t.jobs + DLQ_SUFFIX for t in self._topics.values()],
        )
        self.lag = LagSampler(settings, self.groups, interval_s=3600)
        for t in self._topics.values():
            ensure_topics(settings, t.specs())
        self.collector.begin()

    def interval(self, rate: float, seconds: float) -> Observation:
        """Publish `rate`·`seconds` jobs evenly; then measure the interval's results and the lag."""
        start = time.time()
        count = max(1, round(rate * seconds))
        for i in range(count):
            kind = next(self._turn)
            spec = self._specs[kind].model_copy(update={"seed": next(self._seeds)})
            self.publisher.submit(kind, self._topics[kind].jobs, str(uuid.uuid4()), spec)
            pause = start + (i + 1) * seconds / count - time.time()
            if pause > 0 and self._stop.wait(pause):
                break
        end = time.time()
        results, _dead, _corrupt, _events = self.collector.snapshot()
        sent = {j.job_id: j.submitted_at for j in self.publisher.sent_jobs()}
        latencies = [r.at - sent[r.job_id] for r in results if start <= r.at < end and r.job_id in sent]
        lags = [self.lag.lag(g) for g in self.groups]
        lag = None if any(x is None for x in lags) else sum(x for x in lags if x is not None)
        return Observation(
            offered=rate, achieved=len(latencies) / (end - start), p95_s=percentiles(latencies).p95, lag=lag
        )

    def close(self) -> None:
        """Stop reading and close the clients."""
        self.lag.stop()
        self.collector.stop()
        self.publisher.close()


def job_specs(kinds: tuple[str, ...]) -> dict[str, BaseModel]:
    """The spec of each kind's small bundled job, validated as a scenario's pool would be."""
    mix = "\n".join(
        f"  - {{action: {k}, weight: 1, pool: [{{file: {JOB_FILES[k]}}}]}}" for k in kinds if k in JOB_FILES
    )
    text = f"name: capacity\nseed: 1\nduration_s: 1\nrate: {{shape: constant, per_second: 1}}\nmix:\n{mix}\n"
    scenario = parse_scenario(text, "<capacity>", BUNDLED_DIR)
    out: dict[str, BaseModel] = {}
    for action in scenario.mix:
        assert isinstance(action, TrainingAction | PlanningAction)
        out[action.action] = action.pool[0].spec
    return out


@contextlib.contextmanager
def managed_workers(
    settings: SimulatorSettings, run: CapacityRun, groups: list[str], out_dir: Path, stop: threading.Event
) -> Iterator[None]:
    """Start `run.workers` workers per kind (none: the running system's serve) and wait until they joined."""
    if run.workers == 0:
        yield
        return
    pool = WorkerPool(count=run.workers)
    commands: dict[str, WorkerCommand] = {k: worker_command(settings, k, pool) for k in run.kinds}
    native = NativeWorkers(commands, dict.fromkeys(run.kinds, run.workers), out_dir / "workers", restart_delay_s=1.0)
    native.start()
    try:
        _await_members(settings, groups, run.workers, stop)
        yield
    finally:
        native.stop(timeout_s=WORKERS_STOP_S)


def _await_members(settings: SimulatorSettings, groups: list[str], count: int, stop: threading.Event) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if all(n >= count for n in group_members(settings, groups).values()):
                return
        if stop.wait(0.5):
            return
    raise TimeoutError(f"the managed workers did not join {groups} within {READY_TIMEOUT_S:g} s")


def search_capacity(
    settings: SimulatorSettings,
    run: CapacityRun,
    out_dir: Path,
    stop: threading.Event | None = None,
    watch: Watch | None = None,
) -> CapacityReport:
    """Search the capacity of the system `settings` point at; write capacity.json, .png and .html to `out_dir`.

    `stop` ends it early (within the current interval) with the best flat rate so far, not held.
    """
    stop = stop or threading.Event()
    load = KafkaLoad(settings, run.kinds, stop)
    try:
        with managed_workers(settings, run, list(load.groups), out_dir, stop):
            report = run_search(run, load, stop, watch)
    finally:
        load.close()
    write_report(report, out_dir)
    return report
