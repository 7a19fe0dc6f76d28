"""`docker compose up` end to end: the stack builds, comes up healthy, and runs a training and a planning job.

Needs a Docker engine with Compose; where none answers the test is deselected (tests/deploy/conftest.py),
never counted as passed. It runs as its own Compose project on free host ports, so a running `make up` stack
is untouched, and removes its containers and volumes at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from quartet_shared.infra import compose_command, free_port

from tests.deploy.conftest import REPO
from tests.support.auth import ADMIN_KEY, API_KEYS_JSON

pytestmark = [pytest.mark.docker, pytest.mark.integration]


class Override(yaml.SafeDumper):
    """Writes Compose's `!override` tag, which replaces a list instead of merging into it."""


class Replace(list[str]):
    """A list Compose should take as is."""


Override.add_representer(Replace, lambda dumper, data: dumper.represent_sequence("!override", list(data)))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, unique_project: str) -> Iterator[dict[str, int]]:
    """The default profile up (built from this checkout) on free host ports; down with its volumes after."""
    ports = {"kafka": free_port(), "training-api": free_port(), "planner-api": free_port()}
    override = {
        "services": {
            "kafka": {
                "ports": Replace([f"{ports['kafka']}:9092"]),
                "environment": {
                    "KAFKA_ADVERTISED_LISTENERS": f"INTERNAL://kafka:19092,EXTERNAL://localhost:{ports['kafka']}"
                },
            },
            "redis": {"ports": Replace([])},
            "postgres": {"ports": Replace([])},
            "training-api": {
                "ports": Replace([f"127.0.0.1:{ports['training-api']}:8001"]),
                "environment": {"QUARTET_API_KEYS": API_KEYS_JSON},
            },
            "planner-api": {
                "ports": Replace([f"127.0.0.1:{ports['planner-api']}:8002"]),
                "environment": {"QUARTET_API_KEYS": API_KEYS_JSON},
            },
            "rental-api": {"ports": Replace([])},
        }
    }
    path = tmp_path_factory.mktemp("compose") / "override.yml"
    path.write_text(yaml.dump(override, Dumper=Override))
    compose = [*compose_command(), "-f", str(path), "-p", unique_project]
    try:
        up = subprocess.run([*compose, "up", "-d", "--build", "--wait"], capture_output=True, text=True, timeout=1800)
        if up.returncode != 0:
            logs = subprocess.run([*compose, "logs", "--tail", "80"], capture_output=True, text=True)
            pytest.fail(f"compose up failed:\n{up.stderr[-4000:]}\n{logs.stdout[-8000:]}")
        yield ports
    finally:
        subprocess.run([*compose, "down", "--volumes", "--remove-orphans"], capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def unique_project() -> str:
    """A Compose project name of this run's own."""
    return f"quartet-e2e-{os.urandom(4).hex()}"


def _submit(kind: str, file: Path, url_option: str, port: int, workdir: Path) -> dict[str, Any]:
    """`quartet submit KIND FILE --wait --json` against the stack, as a user runs it."""
    out = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "quartet"),
            "submit",
            kind,
            str(file),
            "--wait",
            "--json",
            url_option,
            f"http://localhost:{port}",
            "--timeout",
            "600",
        ],
        capture_output=True,
        text=True,
        timeout=700,
        cwd=workdir,
        env={**os.environ, "QUARTET_API_KEY": ADMIN_KEY},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_training_job_runs_end_to_end(stack: dict[str, int], tmp_path: Path) -> None:
    """A softmax job on iris submitted to the training API in Compose succeeds with a result."""
    out = _submit(
        "training",
        REPO / "services" / "training-worker" / "examples" / "softmax_iris.yaml",
        "--training-url",
        stack["training-api"],
        tmp_path,
    )
    assert out["job"]["status"] == "succeeded", out
    assert out["result"], out


def test_planning_job_runs_end_to_end(stack: dict[str, int], tmp_path: Path) -> None:
    """A path-planning job submitted to the planner API in Compose succeeds with a result."""
    out = _submit(
        "plan",
        REPO / "services" / "path-planner" / "scenarios" / "gaussian-peaks.yaml",
        "--planning-url",
        stack["planner-api"],
        tmp_path,
    )
    assert out["job"]["status"] == "succeeded", out
    assert out["result"], out
