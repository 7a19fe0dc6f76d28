"""The console's live feed: a thread that keeps a collector reading the job topics while Kafka answers, and
checks Kafka and Redis, so pages and the event stream only ever read memory and never wait on a server."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from quartet_contracts.registry import ce_type_of
from quartet_contracts.schemas.planning import PlanRequested
from quartet_contracts.schemas.training import TrainingRequested
from quartet_contracts.topics import DLQ_SUFFIX
from quartet_shared.jobkind import JobTopics
from quartet_shared.topics import ensure_topics

from simulator.console.cluster import sample_cluster
from simulator.console.model import (
    AuditView,
    ClusterSample,
    GroupRow,
    Health,
    TopicRow,
    topology,
)
from simulator.console.tally import LiveTally
from simulator.console.timeline import FaultMark
from simulator.kafka_io import Collector
from simulator.preflight import kafka_problem, redis_problem
from simulator.settings import SimulatorSettings

log = logging.getLogger(__name__)

KINDS = ("training", "planning")
REQUEST_TYPES = {ce_type_of(TrainingRequested): "training", ce_type_of(PlanRequested): "planning"}


def job_topics(settings: SimulatorSettings) -> dict[str, JobTopics]:
    """The topics of both job kinds under the simulator's topic prefix."""
    return {kind: JobTopics.of(kind, settings.topic_prefix) for kind in KINDS}


def dead_letter_topics(settings: SimulatorSettings) -> list[str]:
    """The dead-letter topics of both kinds' jobs and results."""
    return [f"{t}{DLQ_SUFFIX}" for topics in job_topics(settings).values() for t in (topics.jobs, topics.results)]


def new_collector(settings: SimulatorSettings) -> Collector:
    """A collector of the job requests, outcomes and dead letters of both kinds (creating their topics, as a run
    does, so that one job service not started yet does not keep the other's jobs out of the audit)."""
    topics = job_topics(settings)
    for each in topics.values():
        ensure_topics(settings, each.specs())
    return Collector(
        settings,
        results={t.results: kind for kind, t in topics.items()},
        dead_letters=dead_letter_topics(settings),
        events=[t.jobs for t in topics.values()],
    )


@dataclass
class LiveFeed:
    """Collects from the moment Kafka first answers; `health` and `audit` are what it knows now."""

    settings: SimulatorSettings
    interval_s: float = 2.0
    collector_factory: Callable[[SimulatorSettings], Collector] = new_collector
    kafka_check: Callable[[SimulatorSettings], str | None] = kafka_problem
    redis_check: Callable[[str], str | None] = redis_problem
    cluster_probe: Callable[[SimulatorSettings], ClusterSample] = sample_cluster
    clock: Callable[[], float] = time.time
    health: Health = field(default_factory=Health)
    collector: Collector | None = None
    samples: tuple[ClusterSample | None, ClusterSample | None] = (None, None)
    collecting_since: float | None = None
    tally: LiveTally = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.tally = LiveTally(REQUEST_TYPES, self.settings.console_lost_after_s, self.settings.console_tracked_jobs)
        watched = job_topics(self.settings).values()
        self._watched = frozenset(t for each in watched for t in (each.jobs, each.results))

    def start(self) -> None:
        """Check and collect on a thread until `stop`."""
        self._thread = threading.Thread(target=self._run, name="console-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop checking and collecting."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self.collector is not None:
            self.collector.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.interval_s)

    def tick(self) -> None:
        """Check Kafka and Redis once; while Kafka answers, sample the cluster and make sure something collects."""
        kafka = self.kafka_check(self.settings)
        redis = self.redis_check(self.settings.redis_url)
        self.health = Health(kafka=kafka, redis=redis, jobs=self.health.jobs, audit=self.health.audit)
        if kafka is not None:
            return
        self._sample()
        if self.collector is None:
            self._collect()
        self._drain()

    def _collect(self) -> None:
        collector: Collector | None = None
        try:
            collector = self.collector_factory(self.settings)
            collector.begin(timeout_s=10)
        except Exception as exc:  # the broker may have gone again: the next tick tries again
            log.info("console feed not collecting yet: %s", exc)
            self.health = replace(self.health, audit=f"{type(exc).__name__}: {exc}")
            if collector is not None:
                with contextlib.suppress(Exception):
                    collector.stop()
            return
        self.collector = collector
        self.collecting_since = self.clock()
        self.health = replace(self.health, audit=None)

    def _sample(self) -> None:
        try:
            sample = self.cluster_probe(self.settings)
        except Exception as exc:  # the broker went away between the check and the sample
            log.info("console feed could not sample the cluster: %s", exc)
            return
        self.samples = (self.samples[1], sample)
        lags = {g.group: g.lag for g in sample.groups if self._watched.intersection(g.topics)}
        with self._lock:
            self.tally.timeline.lag(sample.at, lags)

    def _drain(self) -> None:
        if self.collector is None:
            return
        with self._lock:
            self.tally.take(*self.collector.drain())

    def topology(self) -> tuple[list[TopicRow], list[GroupRow]]:
        """The topics and groups of the last sample, with rates since the one before (empty before any)."""
        previous, current = self.samples
        return ([], []) if current is None else topology(previous, current)

    def note_job_services(self, errors: Mapping[str, str]) -> None:
        """Record which job services did not answer the last listing, and why."""
        self.health = replace(self.health, jobs=dict(errors))

    def audit(self) -> AuditView:
        """The live audit over everything collected so far."""
        self._drain()
        with self._lock:
            return self.tally.view(self.clock())

    def chart(self, faults: Sequence[FaultMark] = ()) -> dict[str, Any]:
        """The throughput, latency and lag series of the charts' window, with `faults` to mark on them."""
        self._drain()
        with self._lock:
            return self.tally.timeline.chart(self.clock(), faults)

    def request_of(self, job_id: str) -> Mapping[str, Any] | None:
        """The spec of a recent planning job whose request the feed saw, or None (too old, or before the console)."""
        self._drain()
        with self._lock:
            return self.tally.specs.get(job_id)
