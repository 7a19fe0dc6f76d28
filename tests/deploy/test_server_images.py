"""The project's Kafka, Redis and PostgreSQL images, run as Compose and `docker run` run them.

Needs a Docker engine (deselected elsewhere, tests/deploy/conftest.py). The servers and the one-shot topic step
run as a Compose project of their own on free host ports, and `down -v` removes it at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from quartet_contracts.topics import CORE_TOPICS, expand
from quartet_shared.net import free_port
from quartet_tools import images
from quartet_tools.infra import compose_command, compose_values, wait_for

from tests.deploy.compose_project import Project

pytestmark = [pytest.mark.docker, pytest.mark.integration]

SERVERS = ("kafka", "redis", "postgres")


def _override(path: Path, ports: dict[str, int]) -> Path:
    """Host ports of the test's own (`!override` replaces the file's list) and the address Kafka advertises."""
    path.write_text(
        f"""services:
  kafka:
    ports: !override ["127.0.0.1:{ports["kafka"]}:9092"]
    environment:
      KAFKA_ADVERTISED_LISTENERS: INTERNAL://kafka:19092,EXTERNAL://localhost:{ports["kafka"]}
  redis:
    ports: !override ["127.0.0.1:{ports["redis"]}:6379"]
  postgres:
    ports: !override ["127.0.0.1:{ports["postgres"]}:5432"]
"""
    )
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The servers and the topic step up (`--wait`: healthy, or exited 0) from images built from this checkout."""
    images.build([*images.SERVERS, "path-planner"])
    ports = {name: free_port() for name in SERVERS}
    override = _override(tmp_path_factory.mktemp("compose") / "override.yml", ports)
    name = f"quartet-servers-{os.urandom(4).hex()}"
    project = Project([*compose_command(), "-f", str(override), "-p", name], name, ports)
    try:
        up = project.run("up", "-d", "--wait", *SERVERS, "kafka-topics")
        # `--wait` waits for a one-shot step to be running, not done: `wait` returns its exit status.
        done = project.run("wait", "kafka-topics") if up.returncode == 0 else up
        if done.returncode != 0:
            logs = project.run("logs", "--tail", "60").stdout
            pytest.fail(f"compose up failed:\n{up.stderr[-3000:]}\n{done.stdout[-500:]}\n{logs[-6000:]}")
        yield project
    finally:
        project.run("down", "--volumes", "--remove-orphans", timeout=300)


def _states(project: Project) -> dict[str, dict[str, object]]:
    out = project.run("ps", "--all", "--format", "json").stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return {str(row["Service"]): row for row in rows}


def test_servers_are_healthy_and_run_unprivileged(project: Project) -> None:
    """Every server passes its health check, runs as a user other than root; the topic step exited 0."""
    states = _states(project)
    for name in SERVERS:
        assert states[name]["Health"] == "healthy", states[name]
        uid = project.run("exec", "-T", name, "id", "-u").stdout.strip()
        assert uid.isdigit() and uid != "0", (name, uid)
    assert (states["kafka-topics"]["State"], states["kafka-topics"]["ExitCode"]) == ("exited", 0)


def test_the_topic_step_created_the_registry_on_the_broker(project: Project) -> None:
    """Every topic of the registry exists on the image's broker, reached through the published port."""
    wanted = {spec.name for spec in expand(CORE_TOPICS)}
    admin = KafkaAdminClient(bootstrap_servers=project.bootstrap, request_timeout_ms=15_000)
    try:
        # A creation is acknowledged before the broker's metadata lists the topic: a bounded moment for that.
        wait_for(lambda: wanted <= set(admin.list_topics()), "the registry's topics on the broker", 60)
    finally:
        admin.close()


def test_postgres_ran_the_init_scripts_so_each_role_reaches_only_its_database(project: Project) -> None:
    """POSTGRES_USER/PASSWORD/DB made the superuser and its database; roles.sql made a role and a database per
    service, reached over TCP with their passwords (the same .env values Compose read)."""
    values = compose_values()

    def connect(user: str, password: str, database: str) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1", port=project.ports["postgres"], user=user, password=password, dbname=database
        )

    with connect(values["POSTGRES_USER"], values["POSTGRES_PASSWORD"], values["POSTGRES_DB"]) as conn:
        roles = {row[0] for row in conn.execute("SELECT rolname FROM pg_roles WHERE rolcanlogin")}
        databases = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
    assert {"training", "planning", "rental", "simulator"} <= roles
    assert {"training", "planning", "rental", values["POSTGRES_DB"]} <= databases
    training_password = values["POSTGRES_TRAINING_PASSWORD"]
    with connect("training", training_password, "training") as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("training",)
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        connect("training", training_password, "planning")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect("training", "wrong", "training")


def test_redis_keeps_nothing_on_disk(project: Project) -> None:
    """A cache only: no snapshots, no append-only file."""
    client = redis.Redis(host="127.0.0.1", port=project.ports["redis"], socket_timeout=5)
    assert client.ping()
    assert client.config_get("save") == {"save": ""}
    assert client.config_get("appendonly") == {"appendonly": "no"}


def test_a_kafka_restart_keeps_its_log_in_the_volume(project: Project) -> None:
    """A record written before `docker compose restart kafka` is read back after it, from the same cluster."""
    topic, value = f"servers.restart.{uuid.uuid4().hex[:8]}", uuid.uuid4().hex.encode()
    admin = KafkaAdminClient(bootstrap_servers=project.bootstrap, request_timeout_ms=15_000)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
        cluster_before = admin.describe_cluster()["cluster_id"]
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=project.bootstrap, acks="all")
    try:
        producer.send(topic, value).get(timeout=30)
    finally:
        producer.close(timeout=10)
    assert project.run("restart", "kafka").returncode == 0
    assert project.run("up", "-d", "--wait", "kafka").returncode == 0
    consumer = KafkaConsumer(
        topic, bootstrap_servers=project.bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=30_000
    )
    try:
        assert value in [record.value for record in consumer]
    finally:
        consumer.close()
    admin = KafkaAdminClient(bootstrap_servers=project.bootstrap, request_timeout_ms=15_000)
    try:
        assert admin.describe_cluster()["cluster_id"] == cluster_before
    finally:
        admin.close()


def test_down_with_volumes_leaves_nothing_behind(project: Project) -> None:
    """No container, network or volume of the project remains after `down -v`."""
    assert project.run("down", "--volumes", "--remove-orphans", timeout=300).returncode == 0
    label = f"label=com.docker.compose.project={project.name}"
    for kind in (["ps", "--all"], ["network", "ls"], ["volume", "ls"]):
        listed = subprocess.run(["docker", *kind, "--quiet", "--filter", label], capture_output=True, text=True)
        assert listed.returncode == 0 and listed.stdout.strip() == "", (kind, listed.stdout)


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
