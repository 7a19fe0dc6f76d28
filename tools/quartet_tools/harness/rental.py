"""The rental manager on private servers for tests and benches: a database of its own, and `rental-manager all` as
a real process on a free port, stopped with SIGTERM (SIGKILL after 30 s) when the block ends."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from quartet_shared.net import free_port
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url

from quartet_tools.harness.processes import stop
from quartet_tools.infra import wait_for

# The fixed signing key of the private servers' rental managers, so that a test can make their tokens itself;
# never a deployment's (those come from the environment or .local/).
JWT_SECRET = "test-secret-" + "x" * 40


def _server(server_url: str) -> tuple[URL, Engine]:
    """The server's URL (psycopg 3) and an autocommit engine for CREATE and DROP DATABASE."""
    url = make_url(server_url.replace("postgresql://", "postgresql+psycopg://", 1))
    return url, create_engine(url, isolation_level="AUTOCOMMIT")


def create_database(server_url: str, name: str) -> str:
    """Create database `name` on the server `server_url` points at and return its URL; `rental-manager`, like each
    of its roles, migrates it when it starts."""
    url, admin = _server(server_url)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    """Drop a database made by create_database (closing whatever still holds it)."""
    _, admin = _server(server_url)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@contextmanager
def rental_manager_process(
    kafka: str,
    redis: str,
    database_url: str,
    workdir: Path,
    prefix: str,
    extra_env: dict[str, str] | None = None,
    **settings: str,
) -> Iterator[str]:
    """Run `rental-manager all` until the block ends; yields its base URL once /readyz answers 200.

    `settings` are extra RENTAL_* variables, named without the prefix (e.g. ADMIN_EMAIL="..."); `extra_env` is
    added as it is, last (PGPASSWORD, say).
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RENTAL_", "QUARTET_", "SIMULATOR_"))}
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=kafka,
        REDIS_URL=redis,
        DATABASE_URL=database_url,
        RENTAL_HOST="127.0.0.1",
        RENTAL_PORT=str(port),
        RENTAL_TOPIC_PREFIX=prefix,
        RENTAL_TOPIC_PARTITIONS="3",
        RENTAL_JWT_SECRET=JWT_SECRET,
        RENTAL_ARGON2_TIME_COST="1",
        RENTAL_ARGON2_MEMORY_KIB="1024",
    )
    env.update({f"RENTAL_{name.upper()}": value for name, value in settings.items()})
    env.update(extra_env or {})
    log_path = workdir / "rental-manager.log"
    script = Path(sys.executable).parent / "rental-manager"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([str(script), "all"], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200

    def gone() -> str:
        return "" if proc.poll() is None else f"rental-manager exited with {proc.returncode}"

    try:
        wait_for(ready, "rental-manager to be ready", 120, log_path, gone)
        yield base
    finally:
        stop(proc)
