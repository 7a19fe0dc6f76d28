"""SQLAlchemy plumbing: engines from DATABASE_URL, and the kernel's own durable tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Engine, MetaData, String, Table, create_engine, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

kernel_metadata = MetaData()

# Every Quartet process that creates kernel tables takes this PostgreSQL advisory lock (any fixed 63-bit number).
TABLES_LOCK = 0x5175_6172_7465_7401

processed_messages = Table(
    "processed_messages",
    kernel_metadata,
    Column("consumer", String(200), primary_key=True),
    Column("message_id", String(200), primary_key=True),
    Column("processed_at", DateTime(timezone=True), nullable=False),
)


def default_sqlite_url(service: str) -> str:
    """The local SQLite file used when DATABASE_URL is unset."""
    path = Path(".local") / "data" / f"{service}.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def normalise_url(url: str) -> str:
    """Make plain postgresql:// URLs use psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    """An engine with settings that suit many short transactions from threads."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record):  # type: ignore[no-untyped-def]
            # WAL lets the API read while a worker writes; the busy timeout waits instead of failing.
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def ensure_tables(engine: Engine, tables: Sequence[Table] | None = None, metadata: MetaData = kernel_metadata) -> None:
    """Create `metadata`'s tables (all, or `tables`) if missing; safe when several processes start at once.

    "Check, then CREATE TABLE" races on PostgreSQL: two workers starting together both find a table missing and
    the second fails on the catalog's unique index (pg_type_typname_nsp_index). A transaction-scoped advisory
    lock makes them take turns, and the second then finds the table there.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": TABLES_LOCK})
        metadata.create_all(conn, tables=list(tables) if tables is not None else None, checkfirst=True)


def create_kernel_tables(engine: Engine) -> None:
    """Create the kernel's tables if missing."""
    ensure_tables(engine)


class UnsupportedDatabase(RuntimeError):
    """The kernel's SQL needs PostgreSQL or SQLite (both speak INSERT ... ON CONFLICT)."""


JSON_DOCUMENT = JSON().with_variant(JSONB(), "postgresql")


def upsert(
    dialect: str, table: Table, values: dict[str, Any], keys: list[str], *, update: bool = False
) -> PgInsert | SqliteInsert:
    """INSERT ... ON CONFLICT (keys) DO NOTHING, or DO UPDATE of the other columns when `update`."""
    stmt: PgInsert | SqliteInsert
    if dialect == "postgresql":
        stmt = pg_insert(table).values(**values)
    elif dialect == "sqlite":
        stmt = sqlite_insert(table).values(**values)
    else:
        raise UnsupportedDatabase(f"the kernel's tables need PostgreSQL or SQLite, not {dialect}")
    if update:
        return stmt.on_conflict_do_update(
            index_elements=keys, set_={k: stmt.excluded[k] for k in values if k not in keys}
        )
    return stmt.on_conflict_do_nothing(index_elements=keys)


def claim_message(session: Session, consumer: str, message_id: str) -> bool:
    """Record `message_id` as processed by `consumer` inside the caller's transaction.

    Returns False if it was already recorded: the caller must then skip the effect. Because the
    row commits or rolls back with the effect itself, an effect can never happen twice.
    """
    values = {"consumer": consumer, "message_id": message_id, "processed_at": datetime.now(UTC)}
    stmt = upsert(session.get_bind().dialect.name, processed_messages, values, ["consumer", "message_id"])
    # RETURNING, not rowcount: drivers disagree on the rowcount of an INSERT that did nothing.
    return session.execute(stmt.returning(processed_messages.c.message_id)).first() is not None
