"""Kernel tables are created safely when several processes start at once against a fresh PostgreSQL database.

Without the advisory lock, "check, then CREATE TABLE" from concurrent starters fails on PostgreSQL's catalog
(duplicate key in pg_type_typname_nsp_index): the simulator found two workers starting together crashing so.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from quartet_shared.db import ensure_tables, make_engine
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, inspect, text
from sqlalchemy.engine import make_url

from tests.support.servers import Servers

pytestmark = pytest.mark.integration

STARTERS = 8


def _fresh_database(server_url: str) -> tuple[str, str]:
    name = f"tables_{uuid.uuid4().hex[:10]}"
    url = make_url(server_url.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, url.set(database=name).render_as_string(hide_password=False)


def _drop(server_url: str, name: str) -> None:
    url = make_url(server_url.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _tables() -> MetaData:
    metadata = MetaData()
    for n in range(4):
        Table(f"t{n}", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))
    return metadata


def test_many_starters_create_the_same_tables_at_once(servers: Servers) -> None:
    name, url = _fresh_database(servers.database_url)
    metadata = _tables()
    engines = [make_engine(url, pool_size=1) for _ in range(STARTERS)]
    start = threading.Barrier(STARTERS)
    errors: list[BaseException] = []

    def starter(n: int) -> None:
        start.wait()
        try:
            ensure_tables(engines[n], metadata=metadata)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=starter, args=(n,)) for n in range(STARTERS)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert set(inspect(engines[0]).get_table_names()) == {"t0", "t1", "t2", "t3"}
    finally:
        for engine in engines:
            engine.dispose()
        _drop(servers.database_url, name)
