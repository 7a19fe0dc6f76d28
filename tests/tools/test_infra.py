"""The native servers' helpers, and the PostgreSQL roles every service gets (on the real server)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from kafka.admin import KafkaAdminClient, NewTopic
from quartet_tools.infra import (
    CLUSTER_DIR,
    CLUSTER_FILE,
    SERVICE_ROLES,
    KafkaCluster,
    NativeKafka,
    NativePostgres,
    Stack,
    free_port,
    new_cluster_id,
    password_variable,
    port_free,
    postgres_bindir,
    shell_exports,
    start_port,
)
from sqlalchemy.engine import make_url

from tests.support.listening import listening
from tests.support.servers import Servers


def test_cluster_ids_are_uuids_the_storage_tool_cannot_mistake_for_options() -> None:
    ids = [new_cluster_id() for _ in range(10_000)]
    # One plain base64 id in 64 starts with "-"; among 10,000 the old generator all but surely made some.
    assert not [i for i in ids if i.startswith("-")]
    assert len(set(ids)) == len(ids)
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)


def test_a_server_starts_again_on_its_saved_port_only_while_it_is_its_own_or_free() -> None:
    """Our server still running keeps its port; stopped, it gets it back when nothing took it meanwhile, else
    the standard port when free, else a free one."""
    saved, standard = free_port(), free_port()
    with listening() as other, listening() as busy_standard:
        taken = other.getsockname()[1]
        assert start_port(saved, standard, ours=False) == saved
        assert start_port(taken, standard, ours=True) == taken
        assert start_port(taken, standard, ours=False) == standard
        elsewhere = start_port(taken, busy_standard.getsockname()[1], ours=False)
        assert elsewhere not in (taken, busy_standard.getsockname()[1]) and port_free(elsewhere)
        assert start_port(None, standard, ours=False) == standard


def _save(workdir: Path, **files: int) -> None:
    """What a start under `workdir` left: a file per name (port, controller-port) holding a port number."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name, port in files.items():
        (workdir / name.replace("_", "-")).write_text(str(port))


def _runs_here(pidfile: Path) -> None:
    """This process stands in for the server: a live pid in the pidfile its server reads."""
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(f"{os.getpid()}\n")


def test_make_up_leaves_the_saved_ports_another_process_took_after_make_down(tmp_path: Path) -> None:
    """Kafka, Redis and PostgreSQL stopped, and their saved ports taken by someone else since: each starts on
    another free port rather than failing to bind (or talking to the foreign server); a saved port still free
    is kept, and a server of ours still running keeps its port whoever else seems to listen there."""
    with listening() as kafka, listening() as redis, listening() as postgres:
        taken = {"kafka": kafka.getsockname()[1], "redis": redis.getsockname()[1]}
        kept = free_port()
        _save(tmp_path / "kafka", port=taken["kafka"])
        _save(tmp_path / "redis", port=taken["redis"])
        _save(tmp_path / "postgres", port=kept)
        after_down = Stack.at(tmp_path, standard_ports=False)
        moved = {"kafka": after_down.kafka.port, "redis": after_down.redis.port}
        assert all(moved[name] != taken[name] and port_free(moved[name]) for name in taken)
        assert after_down.postgres.port == kept

        _save(tmp_path / "postgres", port=postgres.getsockname()[1])
        assert Stack.at(tmp_path, standard_ports=False).postgres.port != postgres.getsockname()[1]
        for pidfile in ("kafka/server.pid", "redis/server.pid", "postgres/data/postmaster.pid"):
            _runs_here(tmp_path / pidfile)
        running = Stack.at(tmp_path, standard_ports=False)
        assert (running.kafka.port, running.redis.port) == (taken["kafka"], taken["redis"])
        assert running.postgres.port == postgres.getsockname()[1]


def test_a_stopped_cluster_moves_a_taken_client_or_controller_port_and_every_node_votes_with_the_new_one(
    tmp_path: Path,
) -> None:
    """`make up KAFKA_NODES=3` after a down: a node whose port was taken starts elsewhere, and a controller port
    taken moves in every node's voters alike (a static quorum's voters live in its configuration only); while any
    node runs, the cluster keeps every port it has."""
    cluster = tmp_path / CLUSTER_DIR
    with listening() as client, listening() as controller:
        ports = [free_port(), client.getsockname()[1], free_port()]
        controllers = [free_port(), free_port(), controller.getsockname()[1]]
        for i, (port, controller_port) in enumerate(zip(ports, controllers, strict=True), start=1):
            _save(cluster / f"node-{i}", port=port, controller_port=controller_port)
        (cluster / CLUSTER_FILE).write_text(json.dumps({"ports": ports, "advertised": [0] * 3, "sides": [None] * 3}))
        stack = Stack.at(tmp_path, standard_ports=False, kafka_nodes=3)
        assert isinstance(stack.kafka, KafkaCluster)
        nodes = stack.kafka.nodes
        assert [nodes[0].port, nodes[2].port] == [ports[0], ports[2]]
        assert nodes[1].port != ports[1] and port_free(nodes[1].port)
        assert [node.controller_port for node in nodes[:2]] == controllers[:2]
        assert nodes[2].controller_port != controllers[2] and port_free(nodes[2].controller_port)
        voters = ",".join(f"{node.node_id}@127.0.0.1:{node.controller_port}" for node in nodes)
        assert {node.voters for node in nodes} == {voters}

        _runs_here(cluster / "node-1" / "server.pid")
        running = Stack.at(tmp_path, standard_ports=False, kafka_nodes=3).kafka
        assert isinstance(running, KafkaCluster)
        assert [node.port for node in running.nodes] == ports
        assert [node.controller_port for node in running.nodes] == controllers


@pytest.mark.integration
def test_the_stack_started_again_on_new_ports_after_a_down_keeps_its_data() -> None:
    """`make up` after `make down`, every port the stack had (Kafka's controller port too) taken meanwhile: the
    servers start on others, and the data directories they were formatted with serve there, topics and tables."""
    workdir = Path(tempfile.mkdtemp(prefix="quartet-ports-"))
    workdir.chmod(0o755)  # the postgres user must reach its data directory under this one
    first = Stack.at(workdir, standard_ports=False)
    try:
        first.start()
        admin = KafkaAdminClient(bootstrap_servers=first.kafka.bootstrap)
        admin.create_topics([NewTopic("kept", 1, 1)])
        admin.close()
        with psycopg.connect(first.postgres.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (note text)")
            conn.execute("INSERT INTO kept VALUES ('before the down')")
        assert isinstance(first.kafka, NativeKafka)
        ports = [first.kafka.port, first.kafka.controller_port, first.redis.port, first.postgres.port]
        first.stop()
        with contextlib.ExitStack() as held:
            for port in ports:
                held.enter_context(listening(port))
            again = Stack.at(workdir, standard_ports=False)
            assert not {again.kafka.port, again.redis.port, again.postgres.port} & {*ports}
            again.start()
            assert isinstance(again.kafka, NativeKafka) and again.kafka.controller_port not in ports
            admin = KafkaAdminClient(bootstrap_servers=again.kafka.bootstrap)
            assert "kept" in admin.list_topics()
            admin.close()
            with psycopg.connect(again.postgres.url) as conn:
                assert conn.execute("SELECT note FROM kept").fetchall() == [("before the down",)]
            assert again.redis.ready()
    finally:
        Stack.at(workdir, standard_ports=False).stop()
        shutil.rmtree(workdir, ignore_errors=True)


# ---- the service roles on the real server ------------------------------------------------------------------

OWNERS = ("training", "planning", "rental")


def _connect(env: dict[str, str], *, database: str | None = None, password: str | None = None) -> psycopg.Connection:
    """Connect as the role `env` describes (its URL and PGPASSWORD), optionally to another database."""
    url = make_url(next(v for k, v in env.items() if k.endswith("DATABASE_URL")))
    if database is not None:
        url = url.set(database=database)
    return psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        dbname=url.database,
        password=password if password is not None else env["PGPASSWORD"],
        autocommit=True,
        connect_timeout=5,
    )


@pytest.mark.integration
@pytest.mark.parametrize("role", OWNERS)
def test_a_service_role_owns_its_database_and_nothing_more(servers: Servers, role: str) -> None:
    """It logs in with its password, creates and uses tables in its own database, and holds no server-wide right."""
    env = servers.service_env(role)
    assert env["DATABASE_URL"].rsplit("/", 1)[1] == role
    assert ":" not in env["DATABASE_URL"].split("//")[1].split("@")[0], "the URL must not carry the password"
    with _connect(env) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == (role, role)
        table = f"probe_{uuid.uuid4().hex[:8]}"
        conn.execute(f"CREATE TABLE {table} (id int)")
        conn.execute(f"INSERT INTO {table} VALUES (1)")
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)
        conn.execute(f"DROP TABLE {table}")
        flags = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles"
            " WHERE rolname = current_user"
        ).fetchone()
        assert flags == (False, False, False, False, False)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"CREATE ROLE intruder_{uuid.uuid4().hex[:8]} LOGIN SUPERUSER")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"CREATE DATABASE intruder_{uuid.uuid4().hex[:8]}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SET ROLE postgres")


@pytest.mark.integration
@pytest.mark.parametrize("role", [*OWNERS, "simulator"])
def test_a_service_role_cannot_connect_to_another_services_database(servers: Servers, role: str) -> None:
    """CONNECT is revoked from PUBLIC everywhere: only the owner (and the simulator, on rental) gets in."""
    env = servers.service_env(role)
    allowed = {"simulator": {"rental"}}.get(role, {role})
    for database in (*OWNERS, "quartet", "postgres"):
        if database in allowed:
            continue
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            _connect(env, database=database).close()


@pytest.mark.integration
def test_the_simulator_role_reads_rental_tables_and_writes_nothing(servers: Servers) -> None:
    """The audit's role reads the tables rental's migrations create, and can neither change nor add any."""
    table = f"audited_{uuid.uuid4().hex[:8]}"
    with _connect(servers.service_env("rental")) as rental:
        rental.execute(f"CREATE TABLE {table} (id int)")
        rental.execute(f"INSERT INTO {table} VALUES (7)")
    try:
        env = servers.service_env("simulator")
        assert env["SIMULATOR_RENTAL_DATABASE_URL"].rsplit("/", 1)[1] == "rental"
        with _connect(env) as sim:
            assert sim.execute(f"SELECT id FROM {table}").fetchall() == [(7,)]
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                sim.execute(f"INSERT INTO {table} VALUES (8)")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                sim.execute(f"CREATE TABLE probe_{uuid.uuid4().hex[:8]} (id int)")
    finally:
        with _connect(servers.service_env("rental")) as rental:
            rental.execute(f"DROP TABLE {table}")


@pytest.mark.integration
def test_tcp_logins_need_the_right_password(servers: Servers) -> None:
    """No role, the superuser included, gets in over TCP without its password (SCRAM)."""
    env = servers.service_env("training")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _connect(env, password="not-the-password").close()
    url = make_url(servers.database_url)
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(
            host=url.host, port=url.port, user=url.username, dbname=url.database, password="", connect_timeout=5
        ).close()


def test_generated_passwords_are_kept_private_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Generated once into a 0600 file and reused; a password set in the environment is the one used."""
    for role in SERVICE_ROLES:
        monkeypatch.delenv(password_variable(role), raising=False)
    monkeypatch.delenv("POSTGRES_PASSWORD", raising=False)
    server = NativePostgres("postgres", 5432, tmp_path)
    first = server.passwords()
    assert stat.S_IMODE(server.secrets_file.stat().st_mode) == 0o600
    assert len(set(first.values())) == len(first) == len(SERVICE_ROLES) + 1
    assert NativePostgres("postgres", 5432, tmp_path).passwords() == first
    monkeypatch.setenv("POSTGRES_RENTAL_PASSWORD", "from-the-environment")
    assert server.passwords()["POSTGRES_RENTAL_PASSWORD"] == "from-the-environment"
    assert server.service_env("rental")["PGPASSWORD"] == "from-the-environment"


def test_exported_settings_survive_the_shell_whatever_their_characters() -> None:
    """`make` sources the files `up` writes; a password with quotes, spaces or $ must arrive as it was."""
    env = {"PGPASSWORD": "a b'c\"d$e`f\\g", "REDIS_URL": "redis://127.0.0.1:6379/0"}
    shell = subprocess.run(
        ["bash", "-c", 'source /dev/stdin; printf "%s\\n%s" "$PGPASSWORD" "$REDIS_URL"'],
        input=shell_exports(env),
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout.split("\n") == [env["PGPASSWORD"], env["REDIS_URL"]]


@pytest.mark.integration
def test_a_server_started_before_the_roles_gets_them_on_the_next_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """`make up` over a server already running with the old open rules (trust, no roles) closes it and adds them."""
    for name in ("POSTGRES_PASSWORD", *(password_variable(role) for role in SERVICE_ROLES)):
        monkeypatch.delenv(name, raising=False)
    workdir = Path(tempfile.mkdtemp(prefix="quartet-pg-"))
    workdir.chmod(0o755)  # the postgres user must reach its data directory under this one
    server = NativePostgres("postgres", free_port(), workdir / "postgres")
    try:
        server.start()
        with psycopg.connect(server.admin_url, autocommit=True) as conn:
            conn.execute("DROP DATABASE training")
            conn.execute("DROP ROLE training")
        (server.workdir / "data" / "pg_hba.conf").write_text("host all all 127.0.0.1/32 trust\n")
        subprocess.run(
            server._as_postgres([str(postgres_bindir() / "pg_ctl"), "-D", str(server.workdir / "data"), "reload"]),
            check=True,
            capture_output=True,
        )
        time.sleep(1)
        open_door = f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
        psycopg.connect(open_door, connect_timeout=5).close()  # the old rules: no password asked
        server.start()
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(open_door, connect_timeout=5).close()
        with _connect(server.service_env("training")) as conn:
            assert conn.execute("SELECT current_user, current_database()").fetchone() == ("training", "training")
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
