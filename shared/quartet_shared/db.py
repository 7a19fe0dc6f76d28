"""SQLAlchemy plumbing: engines from DATABASE_URL, and the kernel's own durable tables."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, create_engine, event, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import Executable

kernel_metadata = MetaData()

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


def create_kernel_tables(engine: Engine) -> None:
    """Create the kernel's tables if missing."""
    kernel_metadata.create_all(engine, checkfirst=True)


def claim_message(session: Session, consumer: str, message_id: str) -> bool:
    """Record `message_id` as processed by `consumer` inside the caller's transaction.

    Returns False if it was already recorded: the caller must then skip the effect. Because the
    row commits or rolls back with the effect itself, an effect can never happen twice.
    """
    values = {"consumer": consumer, "message_id": message_id, "processed_at": datetime.now(UTC)}
    dialect = session.get_bind().dialect.name
    stmt: Executable
    # RETURNING, not rowcount: drivers disagree on the rowcount of an INSERT that did nothing.
    if dialect == "postgresql":
        stmt = (
            pg_insert(processed_messages)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(processed_messages.c.message_id)
        )
    elif dialect == "sqlite":
        stmt = (
            sqlite_insert(processed_messages)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(processed_messages.c.message_id)
        )
    else:
        stmt = insert(processed_messages).values(**values).returning(processed_messages.c.message_id)
    return session.execute(stmt).first() is not None
