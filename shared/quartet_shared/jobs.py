"""The job-status store behind `GET /jobs/{id}`: durable rows in SQL, Redis as a cache that may vanish.

A record is a job's status; its result stays in the row's `result` column and is read only by
`JobStore.result`, so the status cache never carries (nor re-encodes) a result.

Events about a job arrive from Kafka out of order and more than once, so every update is a conditional
SQL UPDATE (compare-and-set in the database): a finished job never changes again, progress only grows,
and a repeated event changes nothing. Each applied update bumps the row's `version`; the cache only ever
replaces an entry with a newer version, so a slow writer can never put an older state back into Redis.
"""

from __future__ import annotations

import builtins
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    Row,
    Select,
    String,
    Table,
    func,
    select,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from quartet_shared.cache import JsonCache, ResilientRedis
from quartet_shared.db import JSON_DOCUMENT, ensure_tables, kernel_metadata, upsert

log = logging.getLogger(__name__)

# Fixed forever: changing it would give every Idempotency-Key a different job id.
QUARTET_JOB_NAMESPACE = uuid.UUID("6f1c7a52-3b8e-5d1a-9c4e-2a7b0d9e4f13")

# Finished jobs never change, so they may stay cached long; active ones change every epoch, and a short
# TTL bounds how long a cache entry missed during a Redis blip can stay behind the database.
TERMINAL_TTL_S = 3600
ACTIVE_TTL_S = 15


class JobStatus(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """True for the three terminal states."""
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)

_JSON = JSON_DOCUMENT

jobs_table = Table(
    "jobs",
    kernel_metadata,
    Column("id", String(200), primary_key=True),
    Column("kind", String(50), nullable=False),
    Column("status", String(20), nullable=False),
    Column("progress", Float, nullable=False, default=0.0),
    Column("spec", _JSON, nullable=False),
    Column("result", _JSON, nullable=True),
    Column("problem", _JSON, nullable=True),
    Column("cached", Boolean, nullable=False, default=False),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_jobs_kind_status_created", jobs_table.c.kind, jobs_table.c.status, jobs_table.c.created_at)
Index("ix_jobs_created", jobs_table.c.created_at)

# Compare-and-set: replace the cached entry only with a newer version of the record.
_CAS_SET = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and type(decoded) == 'table' and tonumber(decoded['version']) and
     tonumber(decoded['version']) >= tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[3]))
return 1
"""


class JobNotFound(LookupError):
    """No job has this id."""


def job_id_for_key(idempotency_key: str) -> str:
    """The job id an Idempotency-Key names: the same key always gives the same id."""
    return str(uuid.uuid5(QUARTET_JOB_NAMESPACE, idempotency_key))


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes even for timezone-aware columns; everything stored is UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _parse_time(value: Any) -> datetime | None:
    return _aware(datetime.fromisoformat(value)) if value else None


@dataclass(frozen=True)
class JobRecord:
    """One job's status as stored: its state, spec, problem, and when each thing happened (not its result)."""

    id: str
    kind: str
    status: JobStatus
    progress: float
    spec: dict[str, Any]
    problem: dict[str, Any] | None
    cached: bool
    version: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    @property
    def finished(self) -> bool:
        """True once the job has reached a terminal state."""
        return self.status.finished

    @classmethod
    def from_row(cls, row: Row[Any]) -> JobRecord:
        """Build from a `jobs` row."""
        m = row._mapping
        created = _aware(m["created_at"])
        updated = _aware(m["updated_at"])
        assert created is not None and updated is not None
        return cls(
            id=m["id"],
            kind=m["kind"],
            status=JobStatus(m["status"]),
            progress=float(m["progress"]),
            spec=dict(m["spec"] or {}),
            problem=m["problem"],
            cached=bool(m["cached"]),
            version=int(m["version"]),
            created_at=created,
            started_at=_aware(m["started_at"]),
            finished_at=_aware(m["finished_at"]),
            updated_at=updated,
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (timestamps as ISO 8601), as cached in Redis."""
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status.value,
            "progress": self.progress,
            "spec": self.spec,
            "problem": self.problem,
            "cached": self.cached,
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "updated_at": self.updated_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobRecord:
        """Inverse of `to_json`."""
        created = _parse_time(data["created_at"])
        updated = _parse_time(data["updated_at"])
        assert created is not None and updated is not None
        return cls(
            id=str(data["id"]),
            kind=str(data["kind"]),
            status=JobStatus(data["status"]),
            progress=float(data["progress"]),
            spec=dict(data.get("spec") or {}),
            problem=data.get("problem"),
            cached=bool(data.get("cached", False)),
            version=int(data["version"]),
            created_at=created,
            started_at=_parse_time(data.get("started_at")),
            finished_at=_parse_time(data.get("finished_at")),
            updated_at=updated,
        )

    def public(self, base_path: str = "") -> JobPublic:
        """The API's view of this job, with links under `base_path`."""
        return JobPublic.of(self, base_path)


class JobPublic(BaseModel):
    """A job as `GET /jobs/{id}` shows it."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: str
    status: JobStatus
    progress: float = Field(ge=0.0, le=1.0)
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime
    problem: dict[str, Any] | None = None
    cached: bool = False
    links: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def of(cls, record: JobRecord, base_path: str = "") -> JobPublic:
        """The public view of `record`; links point under `base_path` (e.g. "" or "http://host:8001")."""
        root = f"{base_path.rstrip('/')}/jobs/{record.id}"
        links = {"self": root, "cancel": root}
        if record.status is JobStatus.SUCCEEDED:
            links["result"] = f"{root}/result"
        return cls(
            id=record.id,
            kind=record.kind,
            status=record.status,
            progress=record.progress,
            created_at=record.created_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            updated_at=record.updated_at,
            problem=record.problem,
            cached=record.cached,
            links=links,
        )


def normalise_problem(problem: Mapping[str, Any]) -> dict[str, Any]:
    """An RFC 9457 problem body: `type` and `title` always present."""
    body = dict(problem)
    body.setdefault("type", "about:blank")
    body.setdefault("title", "Job failed")
    return body


class JobStorePort(Protocol):
    """What the job API, the worker and the projector need of a job-status store (`JobStore`, or a fake in tests).

    Every write is idempotent and monotonic: a finished job never changes, progress only grows, and an update
    that changes nothing leaves the version as it was. Implementations subclass it to inherit `require`.
    """

    def get(self, job_id: str) -> JobRecord | None:
        """The job, or None if unknown."""
        ...

    def require(self, job_id: str) -> JobRecord:
        """The job, or JobNotFound."""
        record = self.get(job_id)
        if record is None:
            raise JobNotFound(job_id)
        return record

    def result(self, job_id: str) -> dict[str, Any] | None:
        """A succeeded job's result (None otherwise)."""
        ...

    def create(self, job_id: str, kind: str, spec: Mapping[str, Any]) -> tuple[JobRecord, bool]:
        """Record a queued job; the same id again returns the existing job and False."""
        ...

    def mark_running(self, job_id: str) -> JobRecord:
        """queued → running; otherwise unchanged."""
        ...

    def update_progress(self, job_id: str, progress: float) -> JobRecord:
        """Raise the progress of an active job; lower or repeated values are ignored."""
        ...

    def complete(self, job_id: str, result: Mapping[str, Any], cached: bool = False) -> JobRecord:
        """Finish an active job with its result."""
        ...

    def fail(self, job_id: str, problem: Mapping[str, Any]) -> JobRecord:
        """Finish an active job as failed with a problem body."""
        ...

    def cancel(self, job_id: str) -> JobRecord:
        """Finish an active job as cancelled."""
        ...

    def discard(self, job_id: str) -> bool:
        """Delete a job still queued; True if one went."""
        ...

    def list(
        self, kind: str | None = None, status: JobStatus | str | None = None, limit: int = 50
    ) -> builtins.list[JobRecord]:
        """The most recent jobs, newest first."""
        ...


class JobStore(JobStorePort):
    """Durable job status in SQL with a Redis read cache; every update is idempotent and monotonic."""

    def __init__(
        self,
        engine: Engine,
        redis: ResilientRedis | None = None,
        *,
        namespace: str = "jobs",
        create_tables: bool = True,
    ) -> None:
        self._engine = engine
        self._redis = redis
        self._cache = JsonCache(redis, namespace, ACTIVE_TTL_S) if redis is not None else None
        if create_tables:
            ensure_tables(engine, [jobs_table])

    # ---- reads -------------------------------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord | None:
        """The job, from the cache when it has it, else from the database (None if unknown)."""
        if self._cache is not None:
            hit = self._cache.get(job_id)
            if isinstance(hit, dict):
                try:
                    return JobRecord.from_json(hit)
                except (KeyError, ValueError, TypeError):
                    log.warning("ignoring a malformed cached job", extra={"job_id": job_id})
        record = self._load(job_id)
        if record is not None:
            self._remember(record)
        return record

    def result(self, job_id: str) -> dict[str, Any] | None:
        """A succeeded job's result as its completed event carried it, read from the database (None otherwise)."""
        stmt = select(jobs_table.c.result).where(
            (jobs_table.c.id == job_id) & (jobs_table.c.status == JobStatus.SUCCEEDED.value)
        )
        with self._engine.connect() as conn:
            found = conn.execute(stmt).scalar()
        return dict(found) if found is not None else None

    def _load(self, job_id: str) -> JobRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(_select_status().where(jobs_table.c.id == job_id)).first()
        return JobRecord.from_row(row) if row is not None else None

    # ---- writes ------------------------------------------------------------------------------------

    def create(self, job_id: str, kind: str, spec: Mapping[str, Any]) -> tuple[JobRecord, bool]:
        """Record a queued job; the same id again returns the existing job and False, never a second one."""
        now = datetime.now(UTC)
        values = {
            "id": job_id,
            "kind": kind,
            "status": JobStatus.QUEUED.value,
            "progress": 0.0,
            "spec": dict(spec),
            "result": None,
            "problem": None,
            "cached": False,
            "version": 1,
            "created_at": now,
            "started_at": None,
            "finished_at": None,
            "updated_at": now,
        }
        stmt = upsert(self._engine.dialect.name, jobs_table, values, ["id"])
        with self._engine.begin() as conn:
            # RETURNING tells a fresh insert from a conflict reliably on both dialects (rowcount does not).
            created = conn.execute(stmt.returning(jobs_table.c.id)).first() is not None
            row = conn.execute(_select_status().where(jobs_table.c.id == job_id)).one()
        record = JobRecord.from_row(row)
        self._remember(record)
        return record, created

    def mark_running(self, job_id: str) -> JobRecord:
        """queued → running; a job already running or finished is left as it is."""
        now = datetime.now(UTC)
        return self._transition(
            job_id,
            jobs_table.c.status == JobStatus.QUEUED.value,
            {"status": JobStatus.RUNNING.value, "started_at": now, "updated_at": now},
        )

    def update_progress(self, job_id: str, progress: float) -> JobRecord:
        """Raise progress (clamped to 0..1) of an active job; lower, repeated or late values are ignored."""
        value = min(1.0, max(0.0, float(progress)))
        now = datetime.now(UTC)
        return self._transition(
            job_id,
            jobs_table.c.status.in_(ACTIVE) & (jobs_table.c.progress < value),
            {
                "status": JobStatus.RUNNING.value,
                "progress": value,
                # A progress event can overtake the "started" one; the job has started either way.
                "started_at": _coalesce(jobs_table.c.started_at, now),
                "updated_at": now,
            },
        )

    def complete(self, job_id: str, result: Mapping[str, Any], cached: bool = False) -> JobRecord:
        """Finish a job with its result; a job already finished keeps its first outcome."""
        now = datetime.now(UTC)
        return self._finish(
            job_id,
            {
                "status": JobStatus.SUCCEEDED.value,
                "progress": 1.0,
                "result": dict(result),
                "cached": bool(cached),
            },
            now,
        )

    def fail(self, job_id: str, problem: Mapping[str, Any]) -> JobRecord:
        """Finish a job as failed with an RFC 9457 problem body; a finished job keeps its first outcome."""
        now = datetime.now(UTC)
        return self._finish(job_id, {"status": JobStatus.FAILED.value, "problem": normalise_problem(problem)}, now)

    def cancel(self, job_id: str) -> JobRecord:
        """Finish a queued or running job as cancelled; a finished job keeps its first outcome."""
        now = datetime.now(UTC)
        return self._finish(job_id, {"status": JobStatus.CANCELLED.value}, now)

    def _finish(self, job_id: str, values: dict[str, Any], now: datetime) -> JobRecord:
        return self._transition(
            job_id,
            jobs_table.c.status.in_(ACTIVE),
            {**values, "started_at": _coalesce(jobs_table.c.started_at, now), "finished_at": now, "updated_at": now},
        )

    def _transition(self, job_id: str, allowed: ColumnElement[bool], values: dict[str, Any]) -> JobRecord:
        """Apply `values` only if the row still satisfies `allowed`, atomically; return the row after."""
        stmt = (
            update(jobs_table)
            .where((jobs_table.c.id == job_id) & allowed)
            .values(**values, version=jobs_table.c.version + 1)
        )
        with self._engine.begin() as conn:
            applied = bool(conn.execute(stmt).rowcount)
            row = conn.execute(_select_status().where(jobs_table.c.id == job_id)).first()
        if row is None:
            raise JobNotFound(job_id)
        record = JobRecord.from_row(row)
        if applied:
            self._remember(record)
        else:
            log.debug("job update ignored", extra={"job_id": job_id, "status": record.status.value})
        return record

    def _remember(self, record: JobRecord) -> None:
        """Cache `record` unless the cache already holds the same or a newer version."""
        if self._cache is None or self._redis is None:
            return
        key = self._cache.key(record.id)
        payload = json.dumps(record.to_json(), separators=(",", ":"))
        ttl = TERMINAL_TTL_S if record.finished else ACTIVE_TTL_S
        self._redis.call(
            "jobs_cas_set",
            lambda r: r.eval(_CAS_SET, 1, key, payload, str(record.version), str(ttl)),  # type: ignore[no-untyped-call]
            0,
        )

    def discard(self, job_id: str) -> bool:
        """Delete a job still queued (its submission never reached the broker); True if a row went."""
        stmt = jobs_table.delete().where((jobs_table.c.id == job_id) & (jobs_table.c.status == JobStatus.QUEUED.value))
        with self._engine.begin() as conn:
            deleted = bool(conn.execute(stmt).rowcount)
        if deleted:
            self.forget(job_id)
        return deleted

    def forget(self, job_id: str) -> None:
        """Drop the cached copy (the database row stays)."""
        if self._cache is not None:
            self._cache.delete(job_id)

    def list(
        self, kind: str | None = None, status: JobStatus | str | None = None, limit: int = 50
    ) -> builtins.list[JobRecord]:
        """The most recent jobs, newest first, optionally of one kind and/or status."""
        stmt = _select_status().order_by(jobs_table.c.created_at.desc(), jobs_table.c.id).limit(max(1, limit))
        if kind is not None:
            stmt = stmt.where(jobs_table.c.kind == kind)
        if status is not None:
            stmt = stmt.where(jobs_table.c.status == JobStatus(status).value)
        with self._engine.connect() as conn:
            return [JobRecord.from_row(row) for row in conn.execute(stmt)]


def _select_status() -> Select[Any]:
    """The status columns of `jobs`: the result column is left to `JobStore.result` (never decoded for a status)."""
    return select(*(column for column in jobs_table.c if column.name != "result"))


def _coalesce(column: ColumnElement[datetime], value: datetime) -> ColumnElement[datetime]:
    return func.coalesce(column, value)


__all__ = [
    "QUARTET_JOB_NAMESPACE",
    "JobNotFound",
    "JobPublic",
    "JobRecord",
    "JobStatus",
    "JobStore",
    "JobStorePort",
    "job_id_for_key",
    "jobs_table",
    "normalise_problem",
]
