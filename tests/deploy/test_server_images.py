"""The project's Kafka, Redis and PostgreSQL images, run as Compose and `docker run` run them.

Needs a Docker engine (deselected elsewhere, tests/deploy/conftest.py).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from quartet_shared import images

pytestmark = [pytest.mark.docker, pytest.mark.integration]


def test_postgres_never_serves_a_volume_whose_initialisation_failed(tmp_path: Path) -> None:
    """An init script failing stops the first start with its status; every later start refuses the volume,
    saying what to do, instead of serving a database without its roles."""
    images.build(["postgres"])
    failing = tmp_path / "fail.sh"
    failing.write_text("echo 'roles: failed' >&2\nexit 3\n")
    failing.chmod(0o644)
    name = f"quartet-servers-pg-{os.urandom(4).hex()}"
    run = [
        "docker",
        "run",
        "--name",
        name,
        "-e",
        "POSTGRES_PASSWORD=local-only",
        "-v",
        f"{name}:/var/lib/postgresql/data",
    ]
    run += ["-v", f"{failing}:/docker-entrypoint-initdb.d/10-fail.sh:ro", images.IMAGES["postgres"].tag]
    try:
        first = subprocess.run(run, capture_output=True, text=True, timeout=180)
        assert first.returncode == 3, first.stderr[-2000:]
        assert "roles: failed" in first.stderr
        again = subprocess.run(["docker", "start", "--attach", name], capture_output=True, text=True, timeout=60)
        assert again.returncode == 1, again.stderr[-2000:]
        assert "did not finish" in again.stderr and "down -v" in again.stderr
    finally:
        subprocess.run(["docker", "rm", "--force", "--volumes", name], capture_output=True, timeout=60)
        subprocess.run(["docker", "volume", "rm", name], capture_output=True, timeout=60)
