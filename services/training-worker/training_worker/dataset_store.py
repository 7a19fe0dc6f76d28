"""Uploaded CSV datasets, kept durably in SQL and addressed by the sha256 of their content.

A content address makes an upload idempotent (the same bytes are one dataset, however often sent) and lets
a job's spec hash, which names the dataset id, stand for the data itself: the result cache can never hand
back a model trained on other data under the same id.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict
from quartet_shared.db import JSON_DOCUMENT, ensure_tables, upsert
from sqlalchemy import Column, DateTime, Engine, Integer, LargeBinary, MetaData, String, Table, select

metadata = MetaData()

training_datasets = Table(
    "training_datasets",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("columns", JSON_DOCUMENT, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def dataset_id(content: bytes) -> str:
    """The id of a dataset: the hex sha256 of its bytes."""
    return hashlib.sha256(content).hexdigest()


class DatasetRecord(BaseModel):
    """A stored dataset's description (its content is read separately, only by workers)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    size_bytes: int
    rows: int
    columns: list[str]
    created_at: datetime


class DatasetStore:
    """Uploaded datasets, one row per content hash; rows are never changed once written."""

    def __init__(self, engine: Engine, *, create_tables: bool = True) -> None:
        self._engine = engine
        if create_tables:
            ensure_tables(engine, metadata=metadata)

    def put(self, content: bytes, name: str, rows: int, columns: list[str]) -> tuple[DatasetRecord, bool]:
        """Store a validated dataset; returns its record and whether it is new (an earlier upload is kept)."""
        ident = dataset_id(content)
        values = {
            "id": ident,
            "name": name,
            "size_bytes": len(content),
            "rows": rows,
            "columns": list(columns),
            "content": content,
            "created_at": datetime.now(UTC),
        }
        stmt = upsert(self._engine.dialect.name, training_datasets, values, ["id"])
        with self._engine.begin() as conn:
            created = conn.execute(stmt.returning(training_datasets.c.id)).first() is not None
        record = self.get(ident)
        assert record is not None, "a dataset just written must be readable"
        return record, created

    def get(self, ident: str) -> DatasetRecord | None:
        """The dataset's description, or None."""
        cols = [c for c in training_datasets.c if c.name != "content"]
        with self._engine.connect() as conn:
            row = conn.execute(select(*cols).where(training_datasets.c.id == ident)).first()
        if row is None:
            return None
        created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
        return DatasetRecord(
            id=row.id,
            name=row.name,
            size_bytes=row.size_bytes,
            rows=row.rows,
            columns=list(row.columns),
            created_at=created,
        )

    def content(self, ident: str) -> bytes:
        """The dataset's CSV bytes; raises KeyError if there is no such dataset (the worker's UploadReader)."""
        with self._engine.connect() as conn:
            data = conn.execute(select(training_datasets.c.content).where(training_datasets.c.id == ident)).scalar()
        if data is None:
            raise KeyError(ident)
        return bytes(data)


__all__ = ["DatasetRecord", "DatasetStore", "dataset_id", "training_datasets"]
