"""The rental manager's database: engine policy per dialect, and Alembic migrations run from code.

PostgreSQL runs every transaction at READ COMMITTED; the writes that must not race lock the rows they
depend on (`SELECT ... FOR UPDATE`), and the leases table carries an exclusion constraint as the last line.
SQLite has neither row locks nor exclusion constraints, so there every transaction starts with
`BEGIN IMMEDIATE`: one writer at a time, which makes the same checks safe at the cost of concurrency.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from quartet_shared.db import default_sqlite_url, make_engine, normalise_url
from sqlalchemy import Connection, Engine, event, text

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_LOCK_KEY = zlib.crc32(b"rental-manager:migrations")


def rental_engine(url: str | None, *, pool_size: int = 10, service: str = "rental-manager") -> Engine:
    """An engine for DATABASE_URL (a local SQLite file when unset) with this service's transaction policy."""
    engine = make_engine(url or default_sqlite_url(service), pool_size=pool_size)
    if engine.dialect.name == "sqlite":
        _serialise_sqlite(engine)
    return engine


def _serialise_sqlite(engine: Engine) -> None:
    """Let SQLAlchemy, not pysqlite, begin transactions, and begin each one IMMEDIATE (a write lock up front)."""

    @event.listens_for(engine, "connect")
    def _autocommit_driver(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration pointing at this service's migrations (and, if given, a live connection)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to `revision`; on PostgreSQL an advisory lock lets many processes start at once."""
    with engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
            conn.commit()
        try:
            command.upgrade(alembic_config(conn), revision)
            conn.commit()
        finally:
            if postgres:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
                conn.commit()
    log.info("database schema at %s", revision, extra={"url": normalise_url(str(engine.url.render_as_string()))})
