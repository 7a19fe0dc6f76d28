"""The two ways tests get real servers: native processes, or testcontainers when Docker answers."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psycopg
from quartet_shared.infra import ROLES_SQL, SERVICE_ROLES, Stack, password_variable, role_env
from quartet_shared.settings import KernelSettings
from sqlalchemy.engine import make_url

from tests.support.auth import API_KEYS

# The images docker-compose.yml runs (tests/deploy/test_compose.py holds the two together).
REDIS_IMAGE = "quartet/redis:bookworm"
POSTGRES_IMAGE = "quartet/postgres:bookworm"

# How the session's servers run; native unless containers are asked for by name.
INFRA_VARIABLE = "QUARTET_TEST_INFRA"
INFRA_CHOICES = ("native", "containers")


def infra_choice() -> str:
    """QUARTET_TEST_INFRA's choice, `native` when unset; a value naming neither way is a ValueError."""
    choice = os.environ.get(INFRA_VARIABLE) or "native"
    if choice not in INFRA_CHOICES:
        raise ValueError(f"{INFRA_VARIABLE}={choice!r}: expected one of {', '.join(INFRA_CHOICES)}")
    return choice


class Servers(Protocol):
    """What tests may do with the servers: find them, and stop or start Kafka and Redis."""

    kafka_bootstrap: str
    redis_url: str
    database_url: str

    def service_env(self, role: str) -> dict[str, str]: ...
    def stop_kafka(self) -> None: ...
    def start_kafka(self) -> None: ...
    def stop_redis(self) -> None: ...
    def start_redis(self) -> None: ...
    def stop(self) -> None: ...
    def broker_log_mark(self) -> int: ...
    def broker_log_since(self, mark: int) -> list[str]: ...


def role_database(servers: Servers, role: str, name: str) -> dict[str, str]:
    """A new database `name` owned by service role `role`, closed to every other role as roles.sql closes the
    role's own, and that role's settings pointed at it: a test runs a service the way it runs for real
    (its own role, no superuser), in a database of the test's own."""
    admin = make_url(servers.database_url).set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{role}"')
        conn.execute(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
    env = servers.service_env(role)
    variable = next(key for key in env if key.endswith("DATABASE_URL"))
    env[variable] = make_url(env[variable]).set(database=name).render_as_string(hide_password=False)
    return env


def kernel_settings(servers: Servers) -> KernelSettings:
    """Kernel settings pointing at `servers`, with quick retries and the test API keys (for fixtures of any scope)."""
    return KernelSettings(
        api_keys=API_KEYS,
        kafka_bootstrap_servers=servers.kafka_bootstrap,
        redis_url=servers.redis_url,
        database_url=servers.database_url,
        service_name="test",
        topic_partitions=3,
        retry_backoff_base_s=0.1,
        retry_backoff_max_s=1.0,
        transaction_timeout_ms=15_000,
        redis_socket_timeout_s=0.3,
        redis_retry_after_s=0.5,
    )


@dataclass
class NativeServers:
    """Native processes under a private work directory, on free ports."""

    stack: Stack
    workdir: Path

    @classmethod
    def start(cls, workdir: Path) -> NativeServers:
        """Start all three under `workdir`."""
        stack = Stack.at(workdir, standard_ports=False)
        stack.start()
        return cls(stack, workdir)

    @property
    def kafka_bootstrap(self) -> str:
        return self.stack.kafka.bootstrap

    @property
    def redis_url(self) -> str:
        return self.stack.redis.url

    @property
    def database_url(self) -> str:
        return self.stack.postgres.url

    def service_env(self, role: str) -> dict[str, str]:
        """A service role's database settings (its URL and PGPASSWORD), as `make up` hands them to the service."""
        return self.stack.postgres.service_env(role)

    def stop_kafka(self) -> None:
        """A clean broker shutdown."""
        self.stack.kafka.stop()

    def start_kafka(self) -> None:
        """Start the broker again on the same port and data, and wait until it serves."""
        self.stack.kafka.start()

    def stop_redis(self) -> None:
        """Stop Redis (its data is lost, as a cache's may be)."""
        self.stack.redis.stop()

    def start_redis(self) -> None:
        """Start Redis again on the same port."""
        self.stack.redis.start()

    def stop(self) -> None:
        """Stop everything."""
        self.stack.stop()

    def broker_log_mark(self) -> int:
        """Where the broker's log ends now (its size in bytes)."""
        path = self.stack.kafka.broker_log
        return path.stat().st_size if path.exists() else 0

    def broker_log_since(self, mark: int) -> list[str]:
        """The broker's log lines written after `mark`."""
        with self.stack.kafka.broker_log.open("rb") as log:
            log.seek(mark)
            return log.read().decode(errors="replace").splitlines()


@dataclass
class ContainerServers:
    """testcontainers' Kafka, Redis and PostgreSQL modules, for machines with a Docker engine."""

    kafka: Any
    redis: Any
    postgres: Any
    kafka_bootstrap: str
    redis_url: str
    database_url: str
    passwords: dict[str, str]

    @classmethod
    def start(cls) -> ContainerServers:
        """Start the three containers."""
        from quartet_shared.infra import kafka_version
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer
        from testcontainers.redis import RedisContainer

        # The same release the native broker runs and docker-compose.yml names.
        kafka = KafkaContainer(f"apache/kafka:{kafka_version()}").with_kraft()
        kafka.start()
        redis = RedisContainer(REDIS_IMAGE)
        redis.start()
        passwords = {password_variable(role): uuid.uuid4().hex for role in SERVICE_ROLES}
        # The same script Compose's init step runs, so the service roles exist here too.
        postgres = PostgresContainer(POSTGRES_IMAGE, driver="psycopg").with_volume_mapping(
            str(ROLES_SQL), "/quartet/roles.sql"
        )
        postgres.start()
        result = postgres.get_wrapped_container().exec_run(
            ["psql", "-X", "-q", "-U", postgres.username, "-d", postgres.dbname, "-f", "/quartet/roles.sql"],
            environment=passwords,
        )
        if result.exit_code != 0:
            raise RuntimeError(f"roles.sql failed in the PostgreSQL container: {result.output!r}")
        redis_url = f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0"
        return cls(
            kafka, redis, postgres, kafka.get_bootstrap_server(), redis_url, postgres.get_connection_url(), passwords
        )

    def service_env(self, role: str) -> dict[str, str]:
        """A service role's database settings (its URL and PGPASSWORD) on the container's server."""
        host, port = self.postgres.get_container_host_ip(), self.postgres.get_exposed_port(5432)
        return role_env(role, host, port, self.passwords)

    def _pause(self, container: Any) -> None:
        container.get_wrapped_container().stop()

    def _resume(self, container: Any) -> None:
        # A stopped container keeps its port bindings, so clients find it where it was.
        container.get_wrapped_container().start()
        time.sleep(5)

    def stop_kafka(self) -> None:
        self._pause(self.kafka)

    def start_kafka(self) -> None:
        self._resume(self.kafka)

    def stop_redis(self) -> None:
        self._pause(self.redis)

    def start_redis(self) -> None:
        self._resume(self.redis)

    def stop(self) -> None:
        for c in (self.kafka, self.redis, self.postgres):
            c.stop()

    def broker_log_mark(self) -> int:
        """Now, in epoch seconds: container logs are read by time."""
        return int(time.time())

    def broker_log_since(self, mark: int) -> list[str]:
        """The broker container's log lines since `mark`."""
        logs = self.kafka.get_wrapped_container().logs(since=mark)
        return bytes(logs).decode(errors="replace").splitlines()
