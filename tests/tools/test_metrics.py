"""What `make metrics` scrapes natively: every process `make up` runs, from the supervisor's own bookkeeping."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from quartet_tools import metrics, services


def test_the_targets_are_each_services_process_and_each_worker_make_up_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest's ports, and a worker's from its pid directory (the port `make up` gave it), under its
    service's job; a worker stopped cleanly (no port left) is not a target."""
    supervisor = services.Supervisor(services.manifest(), pids=tmp_path / "pids", logs=tmp_path / "logs")
    for name, port in (("training-worker.worker-2", "41002"), ("path-planner.worker-1", "")):
        (tmp_path / "pids" / name).mkdir(parents=True)
        if port:
            (tmp_path / "pids" / name / "port").write_text(port)
    monkeypatch.setattr(services, "supervisor", lambda: supervisor)
    assert metrics.native_processes() == [
        ("training-worker", "training-worker", 8001),
        ("training-worker", "training-worker.worker-2", 41002),
        ("path-planner", "path-planner", 8002),
        ("rental-manager", "rental-manager", 8003),
        ("simulator", "simulator", 8004),
    ]


def test_make_up_rewrites_the_targets_only_of_a_running_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without `make metrics` running, `make up` leaves no targets file behind."""
    monkeypatch.setattr(metrics, "WORKDIR", tmp_path / "metrics")
    metrics.refresh_targets()
    assert not (tmp_path / "metrics" / metrics.TARGETS).exists()


def test_make_metrics_leaves_its_saved_port_when_another_process_took_it_after_metrics_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The port the last start saved is reused while the server runs on it; stopped, and the port taken by
    someone else since, the server starts on another port rather than failing to bind."""
    monkeypatch.setattr(metrics, "WORKDIR", tmp_path / "metrics")
    metrics.WORKDIR.mkdir()
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = other.getsockname()[1]
        (metrics.WORKDIR / "port").write_text(str(taken))
        after_down = metrics.native()
        assert not after_down.running() and after_down.port != taken
        # This process stands in for the server: a live pid in its pidfile, and its port held.
        (metrics.WORKDIR / "server.pid").write_text(str(os.getpid()))
        running = metrics.native()
        assert running.running() and running.port == taken
