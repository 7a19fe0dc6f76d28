"""Worker control: native processes are started, SIGKILLed, restarted, frozen and stopped; Compose containers
are reached through the Docker API (here a fake client)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from simulator.servers import ComposeServerControl
from simulator.workers import ComposeWorkers, NativeWorkers, WorkerCommand, WorkerError, resolve_command

from tests.services.simulator.fakes import FakeContainer, FakeDocker
from tests.support.effects import wait_until

SLEEPER = [sys.executable, "-c", "import os, time\nprint(os.environ['SLOT'], flush=True)\ntime.sleep(120)"]


def state(pid: int) -> str:
    """The process state letter from /proc (R, S, T for stopped, ...)."""
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[NativeWorkers]:
    commands = {
        "training": WorkerCommand("training", SLEEPER, {"PATH": "/usr/bin"}, instance_variable="SLOT"),
        "planning": WorkerCommand("planning", SLEEPER, {"PATH": "/usr/bin"}, instance_variable="SLOT"),
    }
    events: list[str] = []
    pool = NativeWorkers(
        commands, {"training": 2, "planning": 1}, tmp_path, restart_delay_s=0.2, on_event=events.append
    )
    pool.start()
    yield pool
    pool.stop(timeout_s=5)


def pids(pool: NativeWorkers, kind: str) -> list[int]:
    return [s.proc.pid for s in pool._slots if s.kind == kind and s.proc is not None and s.proc.poll() is None]


def test_each_slot_gets_its_own_stable_instance_id(workers: NativeWorkers, tmp_path: Path) -> None:
    wait_until(lambda: (tmp_path / "training-1.log").read_text().strip().endswith("sim-training-1"), 10, "slot 1")
    assert workers.kinds() == ["planning", "training"]
    assert workers.alive() == {"training": 2, "planning": 1}


def test_a_killed_worker_is_restarted_in_its_slot(workers: NativeWorkers, tmp_path: Path) -> None:
    log = tmp_path / "planning-0.log"
    wait_until(lambda: "sim-planning-0" in log.read_text(), 10, "the first start to print its slot")
    before = pids(workers, "planning")
    what = workers.kill("planning", 0.0)
    assert what == f"planning worker 0 (pid {before[0]})"
    wait_until(lambda: workers.alive()["planning"] == 1 and pids(workers, "planning") != before, 10, "a restart")
    stats = workers.stats()["planning"]
    assert (stats.killed, stats.restarts, stats.starts) == (1, 1, 2)
    wait_until(lambda: log.read_text().count("sim-planning-0") == 2, 10, "the restart to print its slot")
    assert log.read_text().count("==== start") == 2


def test_a_worker_that_dies_by_itself_backs_off_and_is_given_up_past_the_bound(tmp_path: Path) -> None:
    """Deaths the faults did not cause follow the shared RestartPolicy: 0.2, 0.4, 0.8 s, then no more (a bound of
    3 a minute); the simulator's own SIGKILLs restart after the fixed delay and are not counted."""
    dying = [sys.executable, "-c", "import sys; sys.exit(3)"]
    events: list[str] = []
    command = WorkerCommand("training", dying, {"PATH": "/usr/bin"}, instance_variable="SLOT")
    pool = NativeWorkers(
        {"training": command},
        {"training": 1},
        tmp_path,
        restart_delay_s=0.2,
        restarts_per_minute=3,
        on_event=events.append,
    )
    began = time.monotonic()
    pool.start()
    try:
        wait_until(lambda: any("keeps dying" in e for e in events), 20, "the supervisor to give up")
        assert time.monotonic() - began >= 0.2 + 0.4 + 0.8
        stats = pool.stats()["training"]
        assert (stats.starts, stats.restarts) == (4, 3)
        assert events[-1] == "training worker 0 keeps dying; not restarted again"
        assert pool.alive() == {"training": 0}
    finally:
        pool.stop(timeout_s=5)


def test_pick_chooses_among_live_workers(workers: NativeWorkers) -> None:
    second = pids(workers, "training")[1]
    assert workers.kill("training", 0.99) == f"training worker 1 (pid {second})"
    assert workers.kill(None, 0.0).startswith("training worker 0")


def test_freeze_stops_and_thaw_resumes(workers: NativeWorkers) -> None:
    frozen = workers.freeze("training", True)
    assert frozen == ["training worker 0", "training worker 1"]
    wait_until(lambda: all(state(p) == "T" for p in pids(workers, "training")), 5, "the workers to stop")
    assert all(state(p) != "T" for p in pids(workers, "planning"))
    workers.freeze("training", False)
    wait_until(lambda: all(state(p) != "T" for p in pids(workers, "training")), 5, "the workers to resume")


def test_stop_ends_every_worker_even_frozen_ones(workers: NativeWorkers) -> None:
    workers.freeze(None, True)
    everyone = pids(workers, "training") + pids(workers, "planning")
    workers.stop(timeout_s=5)
    assert workers.alive() == {"training": 0, "planning": 0}
    for pid in everyone:
        assert not Path(f"/proc/{pid}").exists() or state(pid) == "Z"


def test_killing_with_nothing_alive_says_so(tmp_path: Path) -> None:
    pool = NativeWorkers({}, {}, tmp_path)
    with pytest.raises(WorkerError, match="no live training worker"):
        pool.kill("training", 0.5)


def test_commands_resolve_beside_python_or_on_the_path() -> None:
    assert resolve_command("python -V")[0] in {str(Path(sys.executable).parent / "python"), sys.executable}
    with pytest.raises(WorkerError, match="not found"):
        resolve_command("no-such-program-here run")


def test_compose_workers_kill_a_container_and_start_it_again() -> None:
    worker = FakeContainer("quartet-training-worker-1", "training-worker")
    docker = FakeDocker([worker, FakeContainer("quartet-planner-worker-1", "planner-worker")])
    control = ComposeWorkers(docker, project="quartet", restart_delay_s=0.05)
    assert control.kinds() == ["planning", "training"]
    assert control.kill("training", 0.3) == "training container quartet-training-worker-1"
    wait_until(lambda: worker.calls == ["kill SIGKILL", "start"], 5, "the container to be started again")
    assert control.stats()["training"].killed == 1
    assert "com.docker.compose.project=quartet" in docker.queries[0]["label"]


def test_compose_workers_pause_and_unpause() -> None:
    worker = FakeContainer("quartet-planner-worker-1", "planner-worker")
    control = ComposeWorkers(FakeDocker([worker]))
    assert control.freeze("planning", True) == ["planning container quartet-planner-worker-1"]
    assert control.freeze("planning", False) == ["planning container quartet-planner-worker-1"]
    assert worker.calls == ["pause", "unpause"]


def test_compose_servers_stop_and_start_the_broker_and_redis() -> None:
    kafka, redis = FakeContainer("k", "kafka"), FakeContainer("r", "redis")
    control = ComposeServerControl(FakeDocker([kafka, redis]), settle_s=0)
    control.stop_kafka()
    control.start_kafka()
    control.stop_redis()
    control.start_redis()
    assert kafka.calls == ["stop 30", "start"] and redis.calls == ["stop 10", "start"]
