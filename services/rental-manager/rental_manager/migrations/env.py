"""Alembic environment: migrate the connection the caller passed, or the one DATABASE_URL names."""

from __future__ import annotations

from alembic import context
from rental_manager.adapters.orm import VERSION_TABLE, Base
from sqlalchemy import Connection


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # Its own version table: services may share one database, and each migrates its own schema.
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against a live connection."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from rental_manager.adapters.db import rental_engine
    from rental_manager.settings import RentalSettings

    settings = RentalSettings()
    engine = rental_engine(settings.database_url, service=settings.service_name)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
