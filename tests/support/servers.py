"""The two ways tests get real servers: native processes, or the project's images through testcontainers."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import quote

import psycopg
from quartet_shared.settings import KernelSettings
from quartet_tools.infra import (
    ROLES_SQL,
    ROOT,
    SERVICE_ROLES,
    InfraError,
    Stack,
    broker_settings,
    free_port,
    kafka_serves,
    kafka_version,
    new_cluster_id,
    password_variable,
    role_env,
    wait_for,
)
from sqlalchemy.engine import make_url

from tests.support.auth import API_KEYS

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

# The images docker-compose.yml runs (tests/deploy/test_compose.py holds the two together).
REDIS_IMAGE = "quartet/redis:bookworm"
POSTGRES_IMAGE = "quartet/postgres:bookworm"

# The project's broker image, of the release the native broker runs (quartet_tools.images builds it).
KAFKA_IMAGE = f"quartet/kafka:{kafka_version()}"
# Compose's PostgreSQL runs it once on a new volume; the test container does too.
POSTGRES_INIT = ROOT / "deploy" / "compose" / "postgres-init.sh"
# The superuser's database where tests make their own, as natively (NativePostgres.database).
TEST_DATABASE = "quartet"

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
    def kill_kafka(self) -> None: ...
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

    def kill_kafka(self) -> None:
        """SIGKILL the broker: no clean shutdown, its log recovered at the next start."""
        self.stack.kafka.kill()

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


def _kafka_variable(key: str) -> str:
    """The image's KAFKA_* variable for broker property `key` (its entrypoint reads `_` as `.`, `__` as `_`)."""
    return "KAFKA_" + key.upper().replace("_", "__").replace("-", "___").replace(".", "_")


def _on_loopback(container: DockerContainer, port: int, host_port: int) -> DockerContainer:
    """Publish the container's `port` on the host's 127.0.0.1:`host_port`, as Compose publishes every port."""
    # testcontainers' with_bind_ports takes a port only (published on every interface); docker-py takes the
    # (address, port) pair as it is.
    container.ports[f"{port}/tcp"] = cast(Any, ("127.0.0.1", host_port))
    return container


# How long a server may take to serve after its container starts: generous, since a JVM starting on two cores
# shared with other builds and test runs has taken two minutes here.
KAFKA_START_S, REDIS_START_S, POSTGRES_START_S = 300, 120, 180


def _check(container: DockerContainer, ready: Callable[[], bool], what: str, timeout_s: float) -> None:
    """Wait until `ready()`; fail with the container's last log lines if it exits or `timeout_s` passes."""
    wrapped = container.get_wrapped_container()

    def exited() -> str:
        wrapped.reload()
        return f"its container exited ({wrapped.attrs['State']['ExitCode']})" if wrapped.status == "exited" else ""

    try:
        wait_for(ready, what, timeout_s, gone=exited)
    except InfraError as exc:
        tail = bytes(wrapped.logs(tail=30)).decode(errors="replace")
        raise InfraError(f"{exc}\n{tail}") from exc


@dataclass
class ContainerServers:
    """The project's own Kafka, Redis and PostgreSQL images, run through testcontainers.

    Each is published on a host port chosen free up front (Kafka's and Redis's must stay where clients found
    them across a stop and start) and on 127.0.0.1 only. A stopped container keeps its data: stopping and
    starting one is the container equivalent of stopping and restarting a native server.
    """

    kafka: DockerContainer
    redis: DockerContainer
    postgres: DockerContainer
    kafka_bootstrap: str
    redis_url: str
    database_url: str
    passwords: dict[str, str]

    @classmethod
    def start(cls) -> ContainerServers:
        """Start the three containers together and wait until each serves from the host."""
        _ensure_built([KAFKA_IMAGE, REDIS_IMAGE, POSTGRES_IMAGE])
        session = uuid.uuid4().hex[:8]
        kafka_port, redis_port, postgres_port = free_port(), free_port(), free_port()
        passwords = {name: uuid.uuid4().hex for name in ("POSTGRES_PASSWORD", *map(password_variable, SERVICE_ROLES))}
        secret = quote(passwords["POSTGRES_PASSWORD"], safe="")
        stack = cls(
            _kafka(f"quartet-test-{session}-kafka", kafka_port),
            _redis(f"quartet-test-{session}-redis", redis_port),
            _postgres(f"quartet-test-{session}-postgres", postgres_port, passwords),
            f"127.0.0.1:{kafka_port}",
            f"redis://127.0.0.1:{redis_port}/0",
            f"postgresql://postgres:{secret}@127.0.0.1:{postgres_port}/{TEST_DATABASE}",
            passwords,
        )
        try:
            # The broker is by far the slowest to come up: the other two start while it does.
            for container in (stack.kafka, stack.redis, stack.postgres):
                container.start()
            _check(stack.kafka, stack._kafka_serves, f"Kafka on {stack.kafka_bootstrap}", KAFKA_START_S)
            _check(stack.redis, stack._redis_answers, f"Redis on {stack.redis_url}", REDIS_START_S)
            # A service role reaching its own database proves the roles exist and the server listens for the host.
            where = f"PostgreSQL on 127.0.0.1:{postgres_port}"
            _check(stack.postgres, stack._training_connects, where, POSTGRES_START_S)
        except BaseException:
            stack.stop()
            raise
        return stack

    def _kafka_serves(self) -> bool:
        return kafka_serves(self.kafka_bootstrap)

    def _redis_answers(self) -> bool:
        import redis

        return bool(redis.Redis.from_url(self.redis_url, socket_timeout=1).ping())

    def _training_connects(self) -> bool:
        env = self.service_env("training")
        with psycopg.connect(env["DATABASE_URL"], password=env["PGPASSWORD"], connect_timeout=2) as conn:
            return conn.execute("SELECT 1").fetchone() is not None

    def service_env(self, role: str) -> dict[str, str]:
        """A service role's database settings (its URL and PGPASSWORD) on the container's server."""
        return role_env(role, "127.0.0.1", make_url(self.database_url).port or 0, self.passwords)

    def stop_kafka(self) -> None:
        """A clean broker shutdown: SIGTERM, SIGKILL after 30 s, as natively."""
        self.kafka.get_wrapped_container().stop(timeout=30)

    def kill_kafka(self) -> None:
        """SIGKILL the broker (`docker kill -s KILL`): no clean shutdown, its log recovered at the next start."""
        self.kafka.get_wrapped_container().kill(signal="SIGKILL")

    def start_kafka(self) -> None:
        """Start the broker's container again (same port, same data) and wait until a client can use it."""
        self.kafka.get_wrapped_container().start()
        _check(self.kafka, self._kafka_serves, f"Kafka on {self.kafka_bootstrap}", KAFKA_START_S)

    def stop_redis(self) -> None:
        """Stop Redis (nothing is saved, so its data is lost, as a cache's may be)."""
        self.redis.get_wrapped_container().stop(timeout=30)

    def start_redis(self) -> None:
        """Start Redis's container again on the same port, and wait for PING."""
        self.redis.get_wrapped_container().start()
        _check(self.redis, self._redis_answers, f"Redis on {self.redis_url}", REDIS_START_S)

    def stop(self) -> None:
        """Remove the three containers and their volumes (those not created are skipped)."""
        for container in (self.kafka, self.redis, self.postgres):
            container.stop()

    def broker_log_mark(self) -> int:
        """Now, in epoch seconds: container logs are read by time."""
        return int(time.time())

    def broker_log_since(self, mark: int) -> list[str]:
        """The broker container's log lines since `mark`."""
        logs = self.kafka.get_wrapped_container().logs(since=mark)
        return bytes(logs).decode(errors="replace").splitlines()


def _ensure_built(tags: list[str]) -> None:
    """Build those of `tags` that are the project's own images and missing from the engine (`make images` does)."""
    from quartet_tools import images

    registry = {image.tag: name for name, image in images.IMAGES.items()}
    images.build([registry[tag] for tag in tags if tag in registry and not images.image_exists(tag)])


def _container(image: str, name: str) -> DockerContainer:
    """A container of `image` named `name`, not started yet."""
    # testcontainers costs most of a second to import: only sessions that ask for containers pay it.
    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.container import DockerContainer

    # Ryuk, testcontainers' reaper, is an image from a registry this machine cannot reach; ContainerServers.stop
    # removes what start made instead.
    testcontainers_config.ryuk_disabled = True
    return DockerContainer(image).with_name(name)


def _kafka(name: str, port: int) -> DockerContainer:
    """The broker as natively (broker_settings), on the same port inside the container as on the host."""
    settings = broker_settings("0.0.0.0", port, controller_port=9093)
    container = _container(KAFKA_IMAGE, name)
    container.with_envs(
        **{_kafka_variable(key): value for key, value in settings.items()},
        CLUSTER_ID=new_cluster_id(),
        KAFKA_HEAP_OPTS="-Xms512m -Xmx512m",
    )
    # Readiness is checked from the host, as clients see it; the image's probe would start a JVM every 10 s.
    container.with_kwargs(healthcheck={"test": ["NONE"]})
    return _on_loopback(container, port, port)


def _redis(name: str, port: int) -> DockerContainer:
    """Redis as the image runs it (no persistence)."""
    return _on_loopback(_container(REDIS_IMAGE, name), 6379, port)


def _postgres(name: str, port: int, passwords: dict[str, str]) -> DockerContainer:
    """PostgreSQL initialised as Compose's is: the service roles from roles.sql, by postgres-init.sh, once."""
    container = _container(POSTGRES_IMAGE, name)
    container.with_envs(POSTGRES_DB=TEST_DATABASE, **passwords)
    container.with_command(["postgres", "-c", "max_connections=200"])
    container.with_copy_into_container(ROLES_SQL, "/quartet/roles.sql")
    container.with_copy_into_container(POSTGRES_INIT, "/docker-entrypoint-initdb.d/postgres-init.sh")
    return _on_loopback(container, 5432, port)
