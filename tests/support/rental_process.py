"""`rental-manager all` as a real process for end-to-end tests: on a free port, the given servers and database,
stopped with SIGTERM (SIGKILL after 30 s) when the block ends."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.effects import wait_until
from tests.support.jobs import free_port
from tests.support.rental import JWT_SECRET


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
        assert proc.poll() is None, log_path.read_text()[-4000:]
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, 120, "rental-manager to be ready")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
