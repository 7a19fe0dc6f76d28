"""What listens where: every service and every ops endpoint on 127.0.0.1 unless its HOST setting says otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from path_planner.settings import PlannerSettings
from quartet_shared.net import free_port
from quartet_shared.ops import OpsServer
from quartet_tools.harness.processes import answers
from rental_manager.settings import RentalSettings
from simulator.settings import SimulatorSettings
from training_worker.settings import TrainingSettings

from tests.support.effects import wait_until
from tests.support.listening import listening_addresses

HostSettings = TrainingSettings | PlannerSettings | RentalSettings | SimulatorSettings
SERVICES: list[tuple[type[HostSettings], str]] = [
    (TrainingSettings, "TRAINING_"),
    (PlannerSettings, "PLANNER_"),
    (RentalSettings, "RENTAL_"),
    (SimulatorSettings, "SIMULATOR_"),
]


@pytest.mark.parametrize(("cls", "prefix"), SERVICES, ids=[prefix.rstrip("_").lower() for _, prefix in SERVICES])
def test_every_service_listens_on_loopback_unless_its_host_setting_says(
    cls: type[HostSettings], prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(f"{prefix}HOST", raising=False)
    assert cls(_env_file=None).host == "127.0.0.1"  # type: ignore[call-arg]
    monkeypatch.setenv(f"{prefix}HOST", "0.0.0.0")
    assert cls(_env_file=None).host == "0.0.0.0"  # type: ignore[call-arg]


@pytest.mark.slow
def test_a_service_process_listens_on_loopback_only(tmp_path: Path) -> None:
    """`simulator api` as `make up` starts it: reachable on 127.0.0.1, bound to nothing else."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIMULATOR_", "QUARTET_"))}
    env.update(
        {"SIMULATOR_PORT": str(port), "SIMULATOR_RUNS_DIR": str(tmp_path), "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    )
    log = tmp_path / "simulator.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "simulator"), "api"], cwd=tmp_path, env=env, stdout=out, stderr=out
        )
    try:
        # A liveness bound, not a speed check: CI starts it on a fresh machine while images build beside it.
        wait_until(answers(proc, f"http://127.0.0.1:{port}/healthz", log), 180, "the simulator to answer /healthz")
        assert listening_addresses(port) == {"127.0.0.1"}
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.slow
def test_a_workers_ops_endpoints_listen_on_loopback_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker or relay serves /healthz and /metrics on its service's HOST, 127.0.0.1 unless told otherwise."""
    monkeypatch.delenv("PLANNER_HOST", raising=False)
    settings = PlannerSettings(_env_file=None)  # type: ignore[call-arg]
    port = free_port()
    server = OpsServer("worker", settings.host, port)
    assert server.start()
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        assert listening_addresses(port) == {"127.0.0.1"}
    finally:
        server.stop()


def test_the_socket_table_reader_sees_a_wildcard_listener() -> None:
    """The check above could not pass vacuously: a socket bound to 0.0.0.0 is reported as such."""
    import socket

    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        assert listening_addresses(s.getsockname()[1]) == {"0.0.0.0"}
