"""`path-planner all` as a real process: serves jobs on its port, keeps SQLite when DATABASE_URL is unset,
and exits cleanly within 30 s of SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from quartet_shared.settings import KernelSettings

from tests.services.path_planner.test_planner_service import small_spec
from tests.support.effects import wait_until
from tests.support.jobs import free_port

pytestmark = pytest.mark.integration


def test_all_in_one_process_plans_and_stops_on_sigterm(settings: KernelSettings, unique: str, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLANNER_", "QUARTET_")) and k != "DATABASE_URL"}
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        REDIS_URL=settings.redis_url,
        PLANNER_PORT=str(port),
        PLANNER_TOPIC_PREFIX=f"p{unique}.",
        PLANNER_TOPIC_PARTITIONS="3",
        PLANNER_INSTANCE_ID=unique,
    )
    script = Path(sys.executable).parent / "path-planner"
    log = (tmp_path / "planner.log").open("wb")
    proc = subprocess.Popen([str(script), "all"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            assert proc.poll() is None, (tmp_path / "planner.log").read_text()[-3000:]
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 90, "path-planner to answer /healthz")
        job_id = httpx.post(f"{base}/jobs", json=small_spec(), timeout=30).json()["id"]
        wait_until(
            lambda: httpx.get(f"{base}/jobs/{job_id}", timeout=5).json()["status"] == "succeeded",
            90,
            "the job to succeed",
        )
        assert (tmp_path / ".local" / "data" / "path-planner.sqlite3").is_file()
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - sent < 30
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
