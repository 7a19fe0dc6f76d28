"""Durable job outputs in SQL: figures per job (`job_artifacts`) and results per spec hash (`job_results`).

Redis only ever holds a copy of a result: the `job_results` row is written first, so losing Redis loses
nothing, and every write is an upsert so a redelivered job that writes again is harmless.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from quartet_contracts.schemas.claimcheck import PARTS_CONTENT_TYPE, ResultRef, decode_parts, encode_parts
from sqlalchemy import Column, DateTime, Engine, LargeBinary, String, Table, select

from quartet_shared.cache import JsonCache, ResilientRedis
from quartet_shared.db import JSON_DOCUMENT, ensure_tables, kernel_metadata, upsert

_JSON = JSON_DOCUMENT
RESULT_TTL_S = 24 * 3600

job_artifacts = Table(
    "job_artifacts",
    kernel_metadata,
    Column("job_id", String(200), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("content_type", String(100), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

job_results = Table(
    "job_results",
    kernel_metadata,
    Column("kind", String(50), primary_key=True),
    Column("spec_hash", String(128), primary_key=True),
    Column("job_id", String(200), nullable=False),
    Column("result", _JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def _upsert(engine: Engine, table: Table, values: dict[str, Any], keys: list[str], update: bool) -> None:
    stmt = upsert(engine.dialect.name, table, values, keys, update=update)
    with engine.begin() as conn:
        conn.execute(stmt)


@dataclass(frozen=True)
class Artifact:
    """One stored file of a job."""

    name: str
    content_type: str
    data: bytes


class ArtifactPort(Protocol):
    """What the job API and the worker need of a job's stored files (`ArtifactStore`, or a fake in tests).

    Implementations subclass it to inherit `put_all` and the claim-check's `put_parts`/`get_parts`, built on
    `put` and `get`.
    """

    def put(self, job_id: str, name: str, data: bytes, content_type: str = "image/png") -> None:
        """Store (or replace) one artifact."""
        ...

    def get(self, job_id: str, name: str) -> Artifact | None:
        """The artifact, or None."""
        ...

    def put_all(self, job_id: str, files: Mapping[str, bytes], content_type: str = "image/png") -> None:
        """Store every file of `files` under `job_id`."""
        for name, data in files.items():
            self.put(job_id, name, data, content_type)

    def put_parts(self, job_id: str, parts: Mapping[str, Any]) -> ResultRef:
        """Store a result's large parts under the job (a re-run replaces them) and return their reference."""
        data, ref = encode_parts(parts)
        self.put(job_id, ref.name, data, PARTS_CONTENT_TYPE)
        return ref

    def get_parts(self, job_id: str, ref: ResultRef) -> dict[str, Any] | None:
        """The large parts `ref` names, None if they are not stored; ValueError if they do not match it."""
        artifact = self.get(job_id, ref.name)
        return decode_parts(artifact.data, ref) if artifact is not None else None

    def names(self, job_id: str) -> list[str]:
        """The names stored for a job, sorted."""
        ...

    def copy(self, source_job: str, target_job: str) -> list[str]:
        """Give `target_job` the artifacts of `source_job`; the names."""
        ...


class ArtifactStore(ArtifactPort):
    """A job's figures and other files, one row per (job id, name)."""

    def __init__(self, engine: Engine, *, create_tables: bool = True) -> None:
        self._engine = engine
        if create_tables:
            ensure_tables(engine, [job_artifacts])

    def put(self, job_id: str, name: str, data: bytes, content_type: str = "image/png") -> None:
        """Store (or replace) one artifact."""
        values = {
            "job_id": job_id,
            "name": name,
            "content_type": content_type,
            "data": data,
            "created_at": datetime.now(UTC),
        }
        _upsert(self._engine, job_artifacts, values, ["job_id", "name"], update=True)

    def get(self, job_id: str, name: str) -> Artifact | None:
        """The artifact, or None."""
        stmt = select(job_artifacts).where((job_artifacts.c.job_id == job_id) & (job_artifacts.c.name == name))
        with self._engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        return Artifact(row.name, row.content_type, bytes(row.data))

    def names(self, job_id: str) -> list[str]:
        """The names stored for a job, sorted."""
        stmt = select(job_artifacts.c.name).where(job_artifacts.c.job_id == job_id).order_by(job_artifacts.c.name)
        with self._engine.connect() as conn:
            return [r[0] for r in conn.execute(stmt)]

    def copy(self, source_job: str, target_job: str) -> list[str]:
        """Give `target_job` the artifacts of `source_job` (a cached result shares the figures); the names."""
        stmt = select(job_artifacts).where(job_artifacts.c.job_id == source_job)
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).all()
        for row in rows:
            self.put(target_job, row.name, bytes(row.data), row.content_type)
        return sorted(row.name for row in rows)


@dataclass(frozen=True)
class CachedResult:
    """A finished result remembered by spec hash, with the job that computed it."""

    job_id: str
    result: dict[str, Any]


class ResultCachePort(Protocol):
    """What the worker needs of the results-by-spec-hash store (`ResultStore`, or a fake in tests)."""

    def get(self, spec_hash: str) -> CachedResult | None:
        """The result remembered for `spec_hash`, or None."""
        ...

    def put(self, spec_hash: str, job_id: str, result: Mapping[str, Any]) -> None:
        """Remember a result; the first one stored for a spec hash is kept."""
        ...


class ResultStore:
    """Results by spec hash: durable in SQL, with Redis as a read-through copy that may vanish."""

    def __init__(
        self, engine: Engine, kind: str, redis: ResilientRedis | None = None, *, create_tables: bool = True
    ) -> None:
        self._engine = engine
        self._kind = kind
        self._cache = JsonCache(redis, f"results:{kind}", RESULT_TTL_S) if redis is not None else None
        if create_tables:
            ensure_tables(engine, [job_results])

    def get(self, spec_hash: str) -> CachedResult | None:
        """The result for `spec_hash`, from Redis when it has it, else from the database."""
        if self._cache is not None:
            hit = self._cache.get(spec_hash)
            if isinstance(hit, dict) and isinstance(hit.get("result"), dict):
                return CachedResult(str(hit["job_id"]), hit["result"])
        found = self._load(spec_hash)
        if found is not None:
            self._remember(spec_hash, found)
        return found

    def _load(self, spec_hash: str) -> CachedResult | None:
        stmt = select(job_results).where((job_results.c.kind == self._kind) & (job_results.c.spec_hash == spec_hash))
        with self._engine.connect() as conn:
            row = conn.execute(stmt).first()
        return CachedResult(row.job_id, dict(row.result)) if row is not None else None

    def put(self, spec_hash: str, job_id: str, result: Mapping[str, Any]) -> None:
        """Remember a result; the first one stored for a spec hash is kept."""
        values = {
            "kind": self._kind,
            "spec_hash": spec_hash,
            "job_id": job_id,
            "result": dict(result),
            "created_at": datetime.now(UTC),
        }
        _upsert(self._engine, job_results, values, ["kind", "spec_hash"], update=False)
        kept = self._load(spec_hash)
        if kept is not None:
            self._remember(spec_hash, kept)

    def _remember(self, spec_hash: str, found: CachedResult) -> None:
        if self._cache is not None:
            self._cache.set(spec_hash, {"job_id": found.job_id, "result": found.result})


__all__ = [
    "Artifact",
    "ArtifactPort",
    "ArtifactStore",
    "CachedResult",
    "ResultCachePort",
    "ResultStore",
    "job_artifacts",
    "job_results",
]
