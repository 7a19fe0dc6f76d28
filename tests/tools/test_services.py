"""`make up`'s native launch: every service process reaches PostgreSQL as its own role, never as the superuser."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from quartet_contracts.topics import LocalTopicDefaults
from quartet_shared.auth import SCOPES, ApiKeys, bearer_headers, write_api_keys_file
from quartet_shared.clients import kafka_admin, partition_counts
from quartet_shared.net import free_port
from quartet_shared.settings import KernelSettings, SettingsError, load_settings
from quartet_tools import images, services
from quartet_tools.harness.rental import rental_manager_process
from quartet_tools.hostservers import KeptWorkers
from quartet_tools.infra import NativePostgres, password_variable
from quartet_tools.services import (
    ServiceProcess,
    Supervisor,
    WorkerPool,
    WorkerSettings,
    available_cpus,
    default_workers,
    launch_env,
    manifest,
)
from sqlalchemy.engine import make_url

from tests.support.auth import ADMIN, API_KEYS_JSON
from tests.support.effects import wait_until
from tests.support.jobs import committed_events, service_process
from tests.support.servers import Servers


def _libpq(url: str) -> str:
    """A URL psycopg takes (testcontainers hands out SQLAlchemy's postgresql+psycopg://)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _as_role(env: dict[str, str]) -> psycopg.Connection:
    """Connect the way the service does: its URL, and libpq's PGPASSWORD."""
    url = next(value for key, value in env.items() if key.endswith("DATABASE_URL") and "WORKER" not in key)
    return psycopg.connect(_libpq(url), password=env["PGPASSWORD"], autocommit=True, connect_timeout=5)


def test_every_service_has_a_role_of_its_own() -> None:
    """The manifest names one role per service, and no two share one."""
    roles = {svc.name: svc.database_role for svc in manifest()}
    assert roles == {
        "training-worker": "training",
        "path-planner": "planning",
        "rental-manager": "rental",
        "simulator": "simulator",
    }


def test_launch_env_hands_every_service_the_generated_api_keys_unless_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make up`'s keys reach every process; a QUARTET_API_KEYS of the user's own is left to win."""
    monkeypatch.delenv("QUARTET_API_KEYS", raising=False)
    monkeypatch.delenv("QUARTET_API_KEY", raising=False)
    keys = write_api_keys_file(tmp_path / "api-keys.env")
    for svc in manifest():
        env = launch_env(svc, lambda role: {}, keys)
        key = ApiKeys.parse(env["QUARTET_API_KEYS"]).identify(env["QUARTET_API_KEY"])
        assert key is not None and key.scopes == SCOPES
    monkeypatch.setenv("QUARTET_API_KEYS", "{}")
    assert "QUARTET_API_KEYS" not in launch_env(manifest()[0], lambda role: {}, keys)


def test_launch_env_hands_each_service_its_roles_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its URL names its role and database with no password in it; PGPASSWORD is that role's; no superuser."""
    for name in ("POSTGRES_PASSWORD", *(password_variable(r) for r in ("training", "planning", "rental", "simulator"))):
        monkeypatch.delenv(name, raising=False)
    postgres = NativePostgres("postgres", 5432, tmp_path)
    passwords = postgres.passwords()
    for svc in manifest():
        assert svc.database_role is not None
        env = launch_env(svc, postgres.service_env)
        assert env["QUARTET_SERVICE_NAME"] == svc.name
        assert env["PGPASSWORD"] == passwords[password_variable(svc.database_role)]
        urls = {key: make_url(value) for key, value in env.items() if "DATABASE_URL" in key}
        own = urls.pop("SIMULATOR_RENTAL_DATABASE_URL" if svc.name == "simulator" else "DATABASE_URL")
        assert (own.username, own.password) == (svc.database_role, None)
        assert own.database == {"simulator": "rental"}.get(svc.database_role, svc.database_role)
        # The simulator's managed workers connect as their services' roles, each URL with its own password.
        assert {(u.username, u.password) for u in urls.values()} == (
            {
                ("training", passwords["POSTGRES_TRAINING_PASSWORD"]),
                ("planning", passwords["POSTGRES_PLANNING_PASSWORD"]),
            }
            if svc.name == "simulator"
            else set()
        )
        assert passwords["POSTGRES_PASSWORD"] not in env.values()


@pytest.mark.integration
def test_a_job_service_started_as_make_up_does_uses_its_own_role(
    servers: Servers, settings: KernelSettings, unique: str, tmp_path: Path
) -> None:
    """training-worker connects to the training database as `training`, creates its tables there, keeps no SQLite."""
    svc = next(s for s in manifest() if s.name == "training-worker")
    keys = write_api_keys_file(tmp_path / "api-keys.env")
    env = launch_env(svc, servers.service_env, keys)
    with service_process("training-worker", "TRAINING_", settings, unique, tmp_path, env=env) as running:
        # The key `make up` generated is the one the service accepts (the test keys are replaced by it).
        assert httpx.get(f"{running.base}/jobs", timeout=10).status_code == 401
        listed = httpx.get(f"{running.base}/jobs", headers=bearer_headers(keys["QUARTET_API_KEY"]), timeout=10)
        assert listed.status_code == 200
        with psycopg.connect(_libpq(servers.database_url), autocommit=True) as admin:
            users = admin.execute("SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'training'")
            assert users.fetchall() == [("training",)]
    with _as_role(env) as conn:
        owners = conn.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'").fetchall()
    assert owners == [("training",)]
    assert not (tmp_path / ".local" / "data").exists(), "it fell back to SQLite"


@pytest.mark.integration
def test_the_rental_manager_migrates_as_its_role_and_the_simulator_reads_what_it_made(
    servers: Servers, unique: str, tmp_path: Path
) -> None:
    """Alembic runs as `rental` in the rental database; the simulator's role reads those tables and nothing more."""
    svc = next(s for s in manifest() if s.name == "rental-manager")
    env = launch_env(svc, servers.service_env)
    database_url = env.pop("DATABASE_URL")
    with rental_manager_process(
        servers.kafka_bootstrap, servers.redis_url, database_url, tmp_path, f"p{unique}.", extra_env=env
    ):
        with _as_role(servers.service_env("rental")) as conn:
            owners = conn.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'").fetchall()
        assert owners == [("rental",)]
    with _as_role(servers.service_env("simulator")) as sim:
        assert sim.execute("SELECT count(*) FROM leases").fetchone() is not None
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            sim.execute("DELETE FROM leases")


def test_make_up_with_compose_builds_the_service_images_from_staged_wheels_before_compose_runs_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compose alone cannot stage the wheels a service image is built from: `make up` has the image registry build
    every service image first, then asks Compose only to run them (a fresh clone failed on `up --build`). The trace
    viewer's images are the profile `tracing`'s, which plain `make up` does not run: not built (nor the `cluster`
    profile's proxy)."""
    calls: list[object] = []
    monkeypatch.setattr(services, "API_KEYS_FILE", tmp_path / "api-keys.env")
    monkeypatch.setattr(services, "compose_active", lambda: True)
    monkeypatch.setattr(services, "compose_command", lambda: ["docker", "compose"])
    monkeypatch.setattr(images, "build", lambda names: calls.append(("build", sorted(names))))
    monkeypatch.setattr(services.subprocess, "run", lambda command, check: calls.append(command))
    services.up()
    assert calls == [
        ("build", ["path-planner", "rental-manager", "simulator", "training-worker"]),
        ["docker", "compose", "up", "-d", "--wait"],
    ]


# ---- worker processes per job service ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cpus", "partitions", "expected"),
    [(1, 6, 1), (2, 6, 1), (3, 6, 1), (4, 6, 2), (8, 6, 4), (12, 6, 6), (64, 6, 6), (16, 3, 3), (2, 1, 1)],
)
def test_the_default_is_half_the_cores_at_least_one_at_most_the_partitions(
    cpus: int, partitions: int, expected: int
) -> None:
    assert default_workers(cpus, partitions) == expected


def _pool(name: str = "training-worker") -> WorkerPool:
    pool = next(svc.workers for svc in manifest() if svc.name == name)
    assert pool is not None
    return pool


def test_every_job_service_has_a_worker_pool_counted_by_its_own_setting() -> None:
    pools = {svc.name: svc.workers for svc in manifest() if svc.workers is not None}
    assert {name: (pool.setting, pool.topic) for name, pool in pools.items()} == {
        "training-worker": ("QUARTET_TRAINING_WORKERS", "training.jobs"),
        "path-planner": ("QUARTET_PLANNER_WORKERS", "planning.jobs"),
    }
    for name, pool in pools.items():
        assert pool.field in WorkerSettings.model_fields, name
        assert pool.command == [name, "worker"]
        # The API runs apart from the workers (with its projector only), so N is the workers' count.
        assert next(svc.command for svc in manifest() if svc.name == name) == [name, "api"]
    # The topics `make up` creates have enough partitions for the default on up to 12 cores.
    assert default_workers(12, LocalTopicDefaults.topic_partitions) == 6


@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("3", 3), (" 2 ", 2), ("6", 6)])
def test_a_worker_count_setting_is_taken(monkeypatch: pytest.MonkeyPatch, value: str, expected: int) -> None:
    monkeypatch.setenv("QUARTET_TRAINING_WORKERS", value)
    assert _pool().count(load_settings(WorkerSettings), partitions=6, cpus=2) == expected


def test_an_unset_worker_count_follows_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUARTET_PLANNER_WORKERS", raising=False)
    settings = load_settings(WorkerSettings, _env_file=None)
    assert _pool("path-planner").count(settings, partitions=6, cpus=8) == 4
    # An empty value, as a copied .env may hold, is unset too.
    monkeypatch.setenv("QUARTET_PLANNER_WORKERS", "")
    assert _pool("path-planner").count(load_settings(WorkerSettings), partitions=6, cpus=8) == 4
    assert _pool("path-planner").count(settings, partitions=6, cpus=available_cpus()) == default_workers(
        available_cpus(), 6
    )


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("0", "greater than or equal to 1"),
        ("-2", "greater than or equal"),
        ("two", "valid integer"),
        ("1.5", "valid integer"),
        ("65", "less than or equal to 64"),
    ],
)
def test_a_bad_worker_count_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, words: str
) -> None:
    monkeypatch.setenv("QUARTET_TRAINING_WORKERS", value)
    with pytest.raises(SettingsError) as refused:
        load_settings(WorkerSettings)
    assert "QUARTET_TRAINING_WORKERS: " in str(refused.value)
    assert words in str(refused.value) and repr(value) in str(refused.value)


def test_more_workers_than_the_jobs_topic_has_partitions_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUARTET_TRAINING_WORKERS", "4")
    with pytest.raises(SettingsError) as refused:
        _pool().count(load_settings(WorkerSettings), partitions=3, cpus=2)
    message = str(refused.value)
    assert "QUARTET_TRAINING_WORKERS=4" in message and "training.jobs has 3 partition(s)" in message
    assert "QUARTET_TOPIC_PARTITIONS" in message


def test_a_bad_worker_count_ends_the_supervisor_with_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QUARTET_PLANNER_WORKERS", "many")
    monkeypatch.setattr(services, "compose_active", lambda: False)
    assert services.main(["status"]) == 2
    assert "QUARTET_PLANNER_WORKERS" in capsys.readouterr().err


@pytest.mark.integration
def test_the_supervisor_runs_n_workers_of_a_job_service_in_one_group_and_stops_them_all(
    servers: Servers, settings: KernelSettings, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QUARTET_TRAINING_WORKERS=3: the API and three `training-worker worker` processes, each its own instance id
    and ops port, members of one consumer group that split the jobs topic's three partitions; down stops all."""
    monkeypatch.setenv("QUARTET_TRAINING_WORKERS", "3")
    training = replace(next(s for s in manifest() if s.name == "training-worker"), port=free_port())
    prefix = f"p{unique}."
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "REDIS_URL": settings.redis_url,
        "TRAINING_PORT": str(training.port),
        "TRAINING_TOPIC_PREFIX": prefix,
        "TRAINING_TOPIC_PARTITIONS": "3",
        "QUARTET_API_KEYS": API_KEYS_JSON,
    }
    supervisor = Supervisor([training], pids=tmp_path / "pids", logs=tmp_path / "logs", env=env)
    processes: list[ServiceProcess] = []
    try:
        supervisor.up(servers.service_env, {}, lambda topics: partition_counts(settings, topics))
        workers = supervisor.workers(training)
        processes = [training, *workers]
        assert [w.name for w in workers] == [f"training-worker.worker-{slot}" for slot in (1, 2, 3)]
        pids = [supervisor.server(p).pid() for p in processes]
        assert None not in pids and len(set(pids)) == 4
        # Each runs under its keeper, whose state names the worker process itself.
        kept = [state.pid for state in map(supervisor.kept, workers) if state is not None and state.pid is not None]
        assert len(set(kept)) == 3 and not set(kept) & set(pids)
        for worker, pid in zip(workers, kept, strict=True):
            command = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
            assert command[-2].endswith(b"/training-worker") and command[-1] == b"worker", command
            assert httpx.get(f"http://127.0.0.1:{worker.port}/healthz", timeout=5).status_code == 200
        members = _group_members(settings, f"{prefix}training.jobs-worker", f"{prefix}training.jobs", 3)
        assert sorted(members) == [f"training-worker-worker-{slot}" for slot in (1, 2, 3)]
        assert sorted(p for owned in members.values() for p in owned) == [0, 1, 2]
        assert all(len(owned) == 1 for owned in members.values()), members
        rows = supervisor.status()
        assert rows[0]["workers"] == "3 worker(s) (QUARTET_TRAINING_WORKERS=3)"
        assert [(r["service"], r["healthy"]) for r in rows[1:]] == [(w.name, True) for w in workers]

        # Fewer asked for on the next `up`: the slots beyond them stop, the others keep running as they were.
        monkeypatch.setenv("QUARTET_TRAINING_WORKERS", "2")
        supervisor.up(servers.service_env, {}, lambda topics: partition_counts(settings, topics))
        assert [supervisor.server(p).pid() for p in processes] == [*pids[:3], None]
    finally:
        supervisor.down()
    assert [supervisor.server(p).pid() for p in processes] == [None] * 4
    for pid in [*pids, *kept]:
        assert not Path(f"/proc/{pid}").exists() or b"zombie" in Path(f"/proc/{pid}/status").read_bytes().lower()


def _group_members(settings: KernelSettings, group: str, topic: str, members: int) -> dict[str, list[int]]:
    """Each member's client id and the partitions of `topic` it owns, once the group has `members` members."""
    admin = kafka_admin(settings)
    try:
        found: dict[str, list[int]] = {}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            description = admin.describe_groups([group])[group]
            found = {
                m["client_id"]: sorted(p for t, parts in _assignment(m) if t == topic for p in parts)
                for m in description["members"]
            }
            if description["group_state"] == "Stable" and len(found) == members:
                return found
            time.sleep(0.5)
        raise AssertionError(f"group {group} never had {members} stable members: {found}")
    finally:
        admin.close()


def _assignment(member: dict[str, Any]) -> list[tuple[str, list[int]]]:
    """A described group member's assigned partitions, by topic."""
    assignment = member["member_assignment"]
    if not assignment:  # an empty one while the group rebalances, which kafka-python leaves undecoded
        return []
    return [(entry["topic"], list(entry["partitions"])) for entry in assignment["assigned_partitions"]]


def test_make_ups_summary_shows_each_job_services_worker_count() -> None:
    rows: list[dict[str, object]] = [
        {"service": "training-worker", "pid": 10, "port": 8001, "healthy": True, "workers": "2 worker(s) (X=2)"},
        {"service": "training-worker.worker-1", "pid": 11, "port": 40001, "healthy": True},
        {"service": "training-worker.worker-2", "pid": None, "port": 40002, "healthy": False},
        {"service": "training-worker.worker-3", "pid": 13, "port": 40003, "healthy": True, "restarts": 2},
    ]
    assert [line.split() for line in services.status_lines(rows)] == [
        ["training-worker", "port", "8001", "healthy", "2", "worker(s)", "(X=2)"],
        ["training-worker.worker-1", "port", "40001", "healthy"],
        ["training-worker.worker-2", "port", "40002", "stopped"],
        ["training-worker.worker-3", "port", "40003", "healthy", "restarted", "2x"],
    ]


def _job(seed: int) -> dict[str, Any]:
    """A small closed-form training job (a fraction of a second in its worker); distinct seeds, no cache hits."""
    return {
        "model": {"kind": "linear"},
        "optimizer": {"kind": "closed_form"},
        "regularization": {"kind": "l2", "lam": 0.1},
        "data": {"kind": "generator", "generator": {"name": "linear", "n_samples": 200, "n_features": 4}},
        "seed": seed,
    }


def _instance_id(pid: int) -> str:
    """The TRAINING_INSTANCE_ID a live process was started with."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return next(e.split(b"=", 1)[1].decode() for e in environ if e.startswith(b"TRAINING_INSTANCE_ID="))


def _training_env(settings: KernelSettings, port: int, prefix: str) -> dict[str, str]:
    """The training service's variables on the test's servers, its topics under `prefix` (three partitions)."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "REDIS_URL": settings.redis_url,
        "TRAINING_PORT": str(port),
        "TRAINING_TOPIC_PREFIX": prefix,
        "TRAINING_TOPIC_PARTITIONS": "3",
        "TRAINING_RENDER_PLOTS": "false",
        "QUARTET_API_KEYS": API_KEYS_JSON,
    }


@pytest.mark.integration
def test_a_sigkilled_worker_of_make_up_is_restarted_by_its_keeper_in_its_slot_and_no_job_is_lost_or_doubled(
    servers: Servers, settings: KernelSettings, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One worker, SIGKILLed through the chaos panel's control while jobs run: its keeper starts it again with
    instance id worker-1 (so the same transactional id and static member), it owns the jobs topic's partitions
    again, every job accepted before and after the kill succeeds, and each has exactly one committed result."""
    monkeypatch.setenv("QUARTET_TRAINING_WORKERS", "1")
    training = replace(next(s for s in manifest() if s.name == "training-worker"), port=free_port())
    prefix = f"k{unique}."
    env = _training_env(settings, training.port, prefix)
    supervisor = Supervisor([training], pids=tmp_path / "pids", logs=tmp_path / "logs", env=env)
    api = httpx.Client(base_url=f"http://127.0.0.1:{training.port}", headers=ADMIN, timeout=10)
    group, topic = f"{prefix}training.jobs-worker", f"{prefix}training.jobs"
    consumed = 0.0
    try:
        supervisor.up(servers.service_env, {}, lambda topics: partition_counts(settings, topics))
        [worker] = supervisor.workers(training)
        before = supervisor.kept(worker)
        assert before is not None and before.pid is not None and before.starts == 1
        assert _instance_id(before.pid) == "worker-1"
        assert _group_members(settings, group, topic, 1) == {"training-worker-worker-1": [0, 1, 2]}
        ids = [api.post("/jobs", json=_job(seed)).json()["id"] for seed in range(6)]
        which = KeptWorkers(supervisor).kill("training", 0.0)
        killed = time.monotonic()
        assert f"(pid {before.pid})" in which
        ids += [api.post("/jobs", json=_job(seed)).json()["id"] for seed in range(6, 12)]
        wait_until(
            lambda: (k := supervisor.kept(worker)) is not None and k.pid not in (None, before.pid), 30, "restart"
        )
        restarted = time.monotonic() - killed
        wait_until(lambda: _healthy(worker), 90, "the restarted worker's /healthz")
        healthy = time.monotonic() - killed
        after = supervisor.kept(worker)
        assert after is not None and after.pid is not None and after.starts == 2
        assert _instance_id(after.pid) == "worker-1"
        # The first job accepted after the kill first: when it succeeds, the partitions are consumed again.
        for job_id in [ids[6], *ids[:6], *ids[7:]]:
            wait_until(lambda j=job_id: api.get(f"/jobs/{j}").json()["status"] == "succeeded", 180, f"job {job_id}")
            consumed = consumed or time.monotonic() - killed
        drained = time.monotonic() - killed
        assert _group_members(settings, group, topic, 1) == {"training-worker-worker-1": [0, 1, 2]}
        log = (tmp_path / "logs" / "training-worker.worker-1.log").read_text()
        assert "exited with 137" in log and "restart 1 in 1 s" in log
    finally:
        api.close()
        supervisor.down()
    results = Counter(e.subject for e in committed_events(settings, f"{prefix}training.results"))
    assert {job_id: results[job_id] for job_id in ids} == dict.fromkeys(ids, 1)
    print(
        f"\nmake up's keeper: restarted {restarted:.2f} s after the SIGKILL, healthy after {healthy:.2f} s, "
        f"the first job accepted after the kill succeeded after {consumed:.1f} s, "
        f"all {len(ids)} jobs succeeded {drained:.1f} s after it"
    )


def _healthy(worker: ServiceProcess) -> bool:
    try:
        return worker.healthy()
    except httpx.HTTPError:
        return False
