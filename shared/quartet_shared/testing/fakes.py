"""Fakes for the job framework's ports: the job-status store, the artifacts, the results cache and a producer.

Each keeps what it is given in memory and honours the rules its real counterpart enforces in SQL or Kafka
(a finished job never changes, progress only grows, the first cached result wins, an event over the bound is
refused), so a handler tested against them behaves as it does against the real adapters.
"""

from __future__ import annotations

import builtins
import dataclasses
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from kafka.consumer.fetcher import ConsumerRecord
from quartet_contracts.envelope import Envelope

from quartet_shared.artifacts import Artifact, ArtifactPort, CachedResult
from quartet_shared.consumer import Context
from quartet_shared.jobkind import AnyJobKind
from quartet_shared.jobs import JobNotFound, JobRecord, JobStatus, JobStorePort, normalise_problem
from quartet_shared.jobservice import JobApi, WorkerPorts
from quartet_shared.settings import KernelSettings

# The kernel's own bound, so a fake refuses exactly what the real producer would.
DEFAULT_MAX_EVENT_BYTES: int = KernelSettings.model_fields["max_event_bytes"].default

_Allowed = Callable[[JobRecord], bool]


def _active(record: JobRecord) -> bool:
    return not record.finished


class FakeJobStore(JobStorePort):
    """An in-memory `JobStorePort`: the same compare-and-set rules as `JobStore`, each applied update a new version."""

    def __init__(self) -> None:
        self._records: dict[str, JobRecord] = {}
        self._results: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._last = datetime.min.replace(tzinfo=UTC)
        self.writes = 0

    def _now(self) -> datetime:
        # Each write a later instant than the one before, as separate SQL transactions are: the newest-first
        # order then never depends on two writes falling in the same microsecond.
        self._last = max(datetime.now(UTC), self._last + timedelta(microseconds=1))
        return self._last

    def get(self, job_id: str) -> JobRecord | None:
        """The job, or None if unknown."""
        with self._lock:
            return self._records.get(job_id)

    def result(self, job_id: str) -> dict[str, Any] | None:
        """A succeeded job's result (None otherwise)."""
        record = self.get(job_id)
        if record is None or record.status is not JobStatus.SUCCEEDED:
            return None
        with self._lock:
            return dict(self._results[job_id])

    def create(self, job_id: str, kind: str, spec: Mapping[str, Any]) -> tuple[JobRecord, bool]:
        """Record a queued job; the same id again returns the existing job and False."""
        with self._lock:
            now = self._now()
            existing = self._records.get(job_id)
            if existing is not None:
                return existing, False
            record = JobRecord(job_id, kind, JobStatus.QUEUED, 0.0, dict(spec), None, False, 1, now, None, None, now)
            self._records[job_id] = record
            self.writes += 1
            return record, True

    def mark_running(self, job_id: str) -> JobRecord:
        """queued → running; a job already running or finished is left as it is."""
        return self._transition(
            job_id,
            lambda r: r.status is JobStatus.QUEUED,
            lambda r, now: {"status": JobStatus.RUNNING, "started_at": now},
        )

    def update_progress(self, job_id: str, progress: float) -> JobRecord:
        """Raise the progress (clamped to 0..1) of an active job; lower, repeated or late values are ignored."""
        value = min(1.0, max(0.0, float(progress)))
        return self._transition(
            job_id,
            lambda r: _active(r) and r.progress < value,
            lambda r, now: {"status": JobStatus.RUNNING, "progress": value, "started_at": r.started_at or now},
        )

    def complete(self, job_id: str, result: Mapping[str, Any], cached: bool = False) -> JobRecord:
        """Finish an active job with its result; a finished job keeps its first outcome."""
        values = {"status": JobStatus.SUCCEEDED, "progress": 1.0, "cached": bool(cached)}
        return self._finish(job_id, values, result)

    def fail(self, job_id: str, problem: Mapping[str, Any]) -> JobRecord:
        """Finish an active job as failed with a problem body; a finished job keeps its first outcome."""
        return self._finish(job_id, {"status": JobStatus.FAILED, "problem": normalise_problem(problem)})

    def cancel(self, job_id: str) -> JobRecord:
        """Finish an active job as cancelled; a finished job keeps its first outcome."""
        return self._finish(job_id, {"status": JobStatus.CANCELLED})

    def discard(self, job_id: str) -> bool:
        """Delete a job still queued; True if one went."""
        with self._lock:
            record = self._records.get(job_id)
            if record is None or record.status is not JobStatus.QUEUED:
                return False
            del self._records[job_id]
            self.writes += 1
            return True

    def list(
        self, kind: str | None = None, status: JobStatus | str | None = None, limit: int = 50
    ) -> builtins.list[JobRecord]:
        """The most recent jobs, newest first, optionally of one kind and/or status."""
        wanted = JobStatus(status) if status is not None else None
        with self._lock:
            records = [
                r
                for r in self._records.values()
                if (kind is None or r.kind == kind) and (wanted is None or r.status is wanted)
            ]
        records.sort(key=lambda r: r.id)
        records.sort(key=lambda r: r.created_at, reverse=True)
        return records[: max(1, limit)]

    def _finish(self, job_id: str, values: dict[str, Any], result: Mapping[str, Any] | None = None) -> JobRecord:
        return self._transition(
            job_id, _active, lambda r, now: {**values, "started_at": r.started_at or now, "finished_at": now}, result
        )

    def _transition(
        self,
        job_id: str,
        allowed: _Allowed,
        change: Callable[[JobRecord, datetime], dict[str, Any]],
        result: Mapping[str, Any] | None = None,
    ) -> JobRecord:
        """Apply `change` (and keep `result`) only if the job still satisfies `allowed`, atomically; the job after."""
        with self._lock:
            now = self._now()
            record = self._records.get(job_id)
            if record is None:
                raise JobNotFound(job_id)
            if not allowed(record):
                return record
            updated = dataclasses.replace(record, **change(record, now), version=record.version + 1, updated_at=now)
            self._records[job_id] = updated
            if result is not None:
                self._results[job_id] = dict(result)
            self.writes += 1
            return updated


class FakeArtifacts(ArtifactPort):
    """An in-memory `ArtifactPort`: one file per (job id, name), a second put replaces the first."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, str], Artifact] = {}

    def put(self, job_id: str, name: str, data: bytes, content_type: str = "image/png") -> None:
        """Store (or replace) one artifact."""
        self.files[(job_id, name)] = Artifact(name, content_type, bytes(data))

    def get(self, job_id: str, name: str) -> Artifact | None:
        """The artifact, or None."""
        return self.files.get((job_id, name))

    def names(self, job_id: str) -> list[str]:
        """The names stored for a job, sorted."""
        return sorted(name for owner, name in self.files if owner == job_id)

    def copy(self, source_job: str, target_job: str) -> list[str]:
        """Give `target_job` the artifacts of `source_job`; the names."""
        copied = [a for (owner, _), a in list(self.files.items()) if owner == source_job]
        for artifact in copied:
            self.put(target_job, artifact.name, artifact.data, artifact.content_type)
        return sorted(a.name for a in copied)


class FakeResults:
    """An in-memory `ResultCachePort`: the first result remembered for a spec hash is kept."""

    def __init__(self) -> None:
        self.by_hash: dict[str, CachedResult] = {}

    def get(self, spec_hash: str) -> CachedResult | None:
        """The result remembered for `spec_hash`, or None."""
        return self.by_hash.get(spec_hash)

    def put(self, spec_hash: str, job_id: str, result: Mapping[str, Any]) -> None:
        """Remember a result unless one is already kept for the hash."""
        self.by_hash.setdefault(spec_hash, CachedResult(job_id, dict(result)))


@dataclasses.dataclass(frozen=True)
class Sent:
    """One envelope a fake producer accepted, and the topic it went to."""

    topic: str
    envelope: Envelope


class RecordingProducer:
    """An `EventProducer` that records what it was asked to send; `fail_with` makes every send raise it."""

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES, fail_with: Exception | None = None) -> None:
        self.max_event_bytes = max_event_bytes
        self.fail_with = fail_with
        self.sent: list[Sent] = []
        self.closed = False

    def send(self, topic: str, envelope: Envelope, *, partition: int | None = None) -> object:
        """Record the envelope; raises `fail_with` when set, EventTooLarge over the bound, as the real one does."""
        if self.fail_with is not None:
            raise self.fail_with
        envelope.to_bounded_kafka(self.max_event_bytes)
        self.sent.append(Sent(topic, envelope))
        return None

    def send_confirmed(self, topic: str, envelope: Envelope, timeout_s: float | None = None) -> Any:
        """Send as `send` does: a fake's send is acknowledged at once."""
        return self.send(topic, envelope)

    def close(self, timeout_s: float = 10.0) -> None:
        """Note that the producer was closed."""
        self.closed = True

    def to(self, topic: str) -> builtins.list[Envelope]:
        """The envelopes sent to `topic`, in order."""
        return [s.envelope for s in self.sent if s.topic == topic]


class HandlerCall:
    """A handler's `Context` as the runner builds it, recording what the handler emits and defers to the commit.

    `commit()` runs the deferred callbacks, as the runner does once the record's unit of work is committed.
    """

    def __init__(self, envelope: Envelope, *, topic: str = "jobs", attempt: int = 1) -> None:
        self.emitted: list[Sent] = []
        self.deferred: list[Callable[[], None]] = []
        self.stopping = threading.Event()
        key, value, headers = envelope.to_kafka()
        record = ConsumerRecord(topic, 0, -1, 0, 0, 0, key, value, headers, None, -1, -1, -1)
        self.context = Context(
            envelope,
            record,
            attempt,
            self.stopping,
            lambda topic, e: self.emitted.append(Sent(topic, e)),
            self.deferred.append,
        )

    def commit(self) -> None:
        """Run what the handler deferred to the commit, once."""
        callbacks, self.deferred[:] = list(self.deferred), []
        for callback in callbacks:
            callback()

    def types(self) -> builtins.list[str]:
        """The CloudEvents types of what was emitted, in order."""
        return [s.envelope.type for s in self.emitted]


@dataclasses.dataclass
class FakePorts:
    """One set of fakes for a job service's ports, shared by its API and its worker as the real ones are."""

    store: FakeJobStore = dataclasses.field(default_factory=FakeJobStore)
    artifacts: FakeArtifacts = dataclasses.field(default_factory=FakeArtifacts)
    results: FakeResults = dataclasses.field(default_factory=FakeResults)
    producer: RecordingProducer = dataclasses.field(default_factory=RecordingProducer)

    def worker_ports(self) -> WorkerPorts:
        """The worker's ports over these fakes."""
        return WorkerPorts(self.artifacts, self.results, self.store)

    def job_api(self, kind: AnyJobKind) -> JobApi[Any]:
        """The job API of `kind` over these fakes."""
        return JobApi(kind, self.store, self.producer, self.artifacts)


__all__ = ["FakeArtifacts", "FakeJobStore", "FakePorts", "FakeResults", "HandlerCall", "RecordingProducer", "Sent"]
