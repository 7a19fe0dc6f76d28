"""`path-planner all` as a real process: serves jobs on its port, keeps SQLite when DATABASE_URL is unset,
and exits cleanly within 30 s of SIGTERM."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest
from quartet_shared.settings import KernelSettings

from tests.services.path_planner.test_planner_service import small_spec
from tests.support.effects import wait_until
from tests.support.jobs import service_process

pytestmark = pytest.mark.integration


def test_all_in_one_process_plans_and_stops_on_sigterm(settings: KernelSettings, unique: str, tmp_path: Path) -> None:
    with service_process("path-planner", "PLANNER_", settings, unique, tmp_path) as service:
        base = service.base
        job_id = httpx.post(f"{base}/jobs", json=small_spec(), timeout=30).json()["id"]
        wait_until(
            lambda: httpx.get(f"{base}/jobs/{job_id}", timeout=5).json()["status"] == "succeeded",
            90,
            "the job to succeed",
        )
        assert (tmp_path / ".local" / "data" / "path-planner.sqlite3").is_file()
        sent = time.monotonic()
        service.proc.send_signal(signal.SIGTERM)
        assert service.proc.wait(timeout=30) == 0
        assert time.monotonic() - sent < 30
