"""Real Kafka, Redis and PostgreSQL on any machine: native processes when no Docker engine answers, Compose otherwise.

Kafka's broker jars come from Maven Central through `deploy/kafka/pom.xml` and run in KRaft combined mode
with the machine's Java; Redis and PostgreSQL come from Debian packages when they are missing. Everything a
run writes lives under `.local/` (ignored by git). `python -m quartet_tools.infra up|down|status` is what
`make infra-up` and `make infra-down` call; the test fixtures use the same classes on private ports.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import hashlib
import json
import math
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from quartet_shared.net import free_port

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / ".local"
KAFKA_POM = ROOT / "deploy" / "kafka" / "pom.xml"
KAFKA_LIBS = LOCAL / "kafka" / "libs"
STATE_DIR = LOCAL / "run"
ENV_FILE = LOCAL / "infra.env"
# The simulator's database settings for `quartet simulate` on the host (its role's password: owner-only).
SIMULATOR_ENV_FILE = LOCAL / "simulator.env"
# The API keys `make up` generates once (QUARTET_API_KEYS for the services, QUARTET_API_KEY for the CLI).
API_KEYS_FILE = LOCAL / "api-keys.env"


class InfraError(RuntimeError):
    """A server could not be installed or started; the message says which and where its log is."""


def docker_available() -> bool:
    """True if a Docker engine answers (not merely a client on the PATH)."""
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) != 0


def start_port(saved: int | None, standard: int | None, *, ours: bool) -> int:
    """Where a server of ours starts: on `saved` (its last start's port) while it still runs (`ours`) or nothing
    listens there, else on `standard` (if any) when free, else on a free port."""
    if saved is not None and (ours or port_free(saved)):
        return saved
    return standard if standard is not None and port_free(standard) else free_port()


def wait_for(
    check: object, what: str, timeout_s: float, log: Path | None = None, gone: Callable[[], str] | None = None
) -> None:
    """Poll `check()` until it is true, or raise InfraError naming `what` and its log.

    `gone()`, if given, says why waiting longer is pointless (the server's process or container has ended), or ''.
    """
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if gone is not None and (reason := gone()):
            last = InfraError(reason)
            break
        try:
            if check():
                return
        except Exception as exc:  # readiness probes fail in many ways until the server is up
            last = exc
        time.sleep(0.25)
    tail = ""
    if log is not None and log.exists():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise InfraError(f"{what} not ready after {timeout_s:.0f}s (last error: {last}){tail}")


def new_cluster_id() -> str:
    """A random KRaft cluster id: a UUID in URL-safe base64, as `kafka-storage random-uuid` prints.

    Like Kafka's own `Uuid.randomUuid`, it never starts with "-": the storage tool would read such an id as an
    option, and one format in 64 would fail.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def run_captured(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    """Run `cmd` to its end, its output captured as text; CalledProcessError (with the output) if it fails."""
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)  # type: ignore[call-overload, no-any-return]


# ---- installation ----------------------------------------------------------------------------------------


def kafka_version() -> str:
    """The Kafka release deploy/kafka/pom.xml pins: the native broker's, and the container image's tag."""
    return pom_property(KAFKA_POM, "kafka.version")


def pom_property(pom: Path, name: str) -> str:
    """A property a pom sets (a pinned version)."""
    import xml.etree.ElementTree as ET

    root = ET.parse(pom).getroot()
    value = root.findtext(f"m:properties/m:{name}", namespaces={"m": "http://maven.apache.org/POM/4.0.0"})
    if not value:
        raise RuntimeError(f"{pom} names no {name} property")
    return value


def ensure_kafka_installed() -> Path:
    """Resolve the broker's jars with Maven once (re-resolved when the pom changes)."""
    return resolve_pom(KAFKA_POM, KAFKA_LIBS, "the Kafka broker's jars")


def resolve_pom(pom: Path, libs: Path, what: str) -> Path:
    """Copy a pom's runtime dependencies from Maven Central into `libs` once (again when the pom changes)."""
    stamp = libs / ".pom-sha256"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return libs
    if shutil.which("mvn") is None:
        _apt_install(["maven"])
    if shutil.which("java") is None:
        _apt_install(["openjdk-17-jre-headless"])
    if libs.exists():
        shutil.rmtree(libs)
    libs.mkdir(parents=True)
    print(f"resolving {what} with Maven into {libs} ...", file=sys.stderr)
    run_captured(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={libs}",
            "-DincludeScope=runtime",
        ]
    )
    stamp.write_text(digest)
    return libs


_apt_updated = False


def apt_update(packages: list[str]) -> dict[str, str]:
    """Refresh apt's package lists once per process (to fetch `packages`); the environment apt runs in."""
    global _apt_updated
    if shutil.which("apt-get") is None:
        raise InfraError(f"{' '.join(packages)} missing and apt-get is not available to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        run_captured(["apt-get", "update", "-qq"], env=env)
        _apt_updated = True
    return env


def _apt_install(packages: list[str]) -> None:
    env = apt_update(packages)
    print(f"installing {' '.join(packages)} from Debian packages ...", file=sys.stderr)
    run_captured(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], env=env)


def redis_server_binary() -> str:
    """The redis-server binary, installing Debian's package when absent."""
    found = shutil.which("redis-server")
    if found is None:
        _apt_install(["redis-server"])
        found = shutil.which("redis-server")
    if found is None:
        raise InfraError("redis-server is not on the PATH after installing it")
    return found


def postgres_bindir() -> Path:
    """The PostgreSQL server's bin directory, installing Debian's package when absent."""
    for _ in range(2):
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
        if candidates:
            return candidates[-1].parent
        _apt_install(["postgresql"])
    raise InfraError("PostgreSQL server binaries not found after installing the postgresql package")


def ensure_command(command: str, package: str | None = None) -> str:
    """The path of `command`, installing Debian's `package` (by default named like the command) when absent."""
    found = shutil.which(command)
    if found is None:
        _apt_install([package or command])
        found = shutil.which(command)
    if found is None:
        raise InfraError(f"{command} is not on the PATH after installing the {package or command} package")
    return found


def ensure_chromium() -> str:
    """Debian's headless-capable Chromium for the browser tests, installing the package when absent."""
    return ensure_command("chromium")


HELM_VERSION = "v3.22.0"
# Prometheus 3.x's Go module is tagged v0.3xx.y (v0.316.0 is Prometheus 3.16.0); promtool checks the scrape
# configuration and the alert rules (deploy/observability).
PROMTOOL_VERSION = "v0.316.0"


def tool_cache(name: str, version: str) -> Path:
    """A pinned tool's directory: a cache outside the repository, one directory per version."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "quartet" / name / version


def go_build(package: str, version: str, binary: Path) -> Path:
    """`go install package@version` into `binary`'s directory once (minutes), then reuse the binary."""
    if binary.exists():
        return binary
    if shutil.which("go") is None:
        _apt_install(["golang-go"])
    print(f"building {binary.name} {version} from the Go module proxy into {binary.parent} ...", file=sys.stderr)
    binary.parent.mkdir(parents=True, exist_ok=True)
    run_captured(
        ["go", "install", f"{package}@{version}"], env={**go_env(), "GOBIN": str(binary.parent)}, cwd=binary.parent
    )
    return binary


def go_env() -> dict[str, str]:
    """The environment the project's Go builds run in: static binaries, and the toolchain a go.mod asks for."""
    # GOTOOLCHAIN=auto lets an older go fetch the toolchain the module's go.mod asks for (Go 1.21 and later).
    return {"GOTOOLCHAIN": "auto", **os.environ, "CGO_ENABLED": "0"}


def helm_binary() -> Path:
    """Where the pinned helm lives."""
    return tool_cache("helm", HELM_VERSION) / "helm"


def ensure_helm() -> Path:
    """Build the pinned helm from the Go module proxy once (a few minutes), then reuse the cached binary."""
    return go_build("helm.sh/helm/v3/cmd/helm", HELM_VERSION, helm_binary())


def promtool_binary() -> Path:
    """Where the pinned promtool lives."""
    return tool_cache("promtool", PROMTOOL_VERSION) / "promtool"


def ensure_promtool() -> Path:
    """Build the pinned promtool from the Go module proxy once (over 4 minutes on 2 cores), then reuse it."""
    return go_build("github.com/prometheus/prometheus/cmd/promtool", PROMTOOL_VERSION, promtool_binary())


# ---- servers ------------------------------------------------------------------------------------------------


# What a server logs when another socket holds its port (libc's text: PostgreSQL runs with lc_messages=C, Redis
# and the JVM print it as is): a free port found before the start can be taken by any process on the machine, or
# be an outgoing connection's local port, before the server binds it.
ADDRESS_IN_USE = "Address already in use"
# A port found free is taken before the server binds it only by a rare race, so a third taken port in a row
# means something else is wrong (a port range exhausted, say): give up and say so rather than try on.
START_ATTEMPTS = 3


def _log_size(log: Path) -> int:
    return log.stat().st_size if log.exists() else 0


def _logged_since(log: Path, offset: int) -> str:
    """What `log` got past `offset`: what the server said during one start, not an earlier start's words."""
    with contextlib.suppress(FileNotFoundError), log.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")
    return ""


@dataclass
class Server:
    """A native server process with a data directory of its own."""

    name: str
    port: int
    workdir: Path

    @property
    def pidfile(self) -> Path:
        return self.workdir / "server.pid"

    @property
    def logfile(self) -> Path:
        return self.workdir / "server.log"

    def pid(self) -> int | None:
        """The running server's pid, if its pidfile names a live process."""
        try:
            pid = int(self.pidfile.read_text().strip().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        # A child of this process that exited stays a zombie, alive to a signal 0, until it is reaped; once reaped
        # its pid may be reused, so the pidfile must not name it any more (a later kill would hit the new owner).
        if _reap(pid):
            self.pidfile.unlink(missing_ok=True)
            return None
        return pid if pid_alive(pid) else None

    def running(self) -> bool:
        """True if its process is alive."""
        return self.pid() is not None

    def gone(self) -> str:
        """Why waiting for it is pointless (its process has ended), or '' while it runs: wait_for's `gone`."""
        return "" if self.running() else f"{self.name} exited (see {self.logfile})"

    def _start_moving(self, attempt: Callable[[], str | None], attempts: int = START_ATTEMPTS) -> None:
        """Run `attempt` (None once the server is up, else what it said) again on a fresh free port while it says
        another socket holds the port, `attempts` starts at most, each with the attempt's own time bound;
        InfraError with what it said otherwise."""
        for tried in range(1, attempts + 1):
            said = attempt()
            if said is None:
                return
            if ADDRESS_IN_USE not in said or tried == attempts:
                raise InfraError(f"{self.name} did not start on 127.0.0.1:{self.port}; its logs say:\n{said}")
            self._move()

    def _move(self) -> None:
        self.port = free_port()

    def _spawned(
        self, spawn: Callable[[], object], ready: Callable[[], bool], timeout_s: float, *logs: Path
    ) -> str | None:
        """`spawn()` the server and wait until `ready()`: None then, or, if its process ended first, what `logs`
        got meanwhile (the attempt of `_start_moving`). A server still running when `timeout_s` ends raises."""
        sizes = {log: _log_size(log) for log in logs}
        spawn()
        try:
            wait_for(ready, f"{self.name} on 127.0.0.1:{self.port}", timeout_s, logs[0], gone=self.gone)
        except InfraError:
            if self.running():
                raise
            return "".join(_logged_since(log, size) for log, size in sizes.items())
        return None

    def _spawn(self, cmd: list[str], env: dict[str, str] | None = None) -> int:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.logfile.open("ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        self.pidfile.write_text(str(proc.pid))
        return proc.pid

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM and wait; SIGKILL if it will not go."""
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        # pid() reaps an exited child and forgets its pidfile; reaping here first would leave the pidfile naming a
        # pid that may be reused.
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.1)
        if self.pid() is not None:
            self.kill()

    def kill(self) -> None:
        """SIGKILL, at once."""
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.05)


ServerT = TypeVar("ServerT", bound=Server)


def pid_alive(pid: int) -> bool:
    """True while a process has this pid (one of another user's too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap(pid: int) -> bool:
    """Collect `pid`'s exit if it is an exited child of this process; whether it was."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        return False
    return reaped == pid


# What every node the project starts sets beyond the listeners and the quorum.
NODE_TUNING = {
    # The controller fences a node that has not heartbeated for this long, and only then elects new leaders
    # for its partitions and moves its group and transaction coordinators: the floor of every leader kill's
    # recovery. 6 s rather than Kafka's 9 s, with a heartbeat every 1.5 s (Kafka's 2 s) so that a node on a
    # loaded host may miss three before it is fenced (a live node fenced by mistake only moves leaders).
    "broker.session.timeout.ms": "6000",
    "broker.heartbeat.interval.ms": "1500",
    # The log cleaner allocates this on the heap at start (Kafka's default 128 MiB): half a cluster node's
    # 256 MiB heap, and a node restarted after a session of fault tests, loading hundreds of partitions, ran
    # out of heap there. The compacted topics here (the runners' changelogs) are small; 32 MiB dedupes them.
    "log.cleaner.dedupe.buffer.size": str(32 * 1024 * 1024),
    "log.cleaner.backoff.ms": "5000",
}


def broker_settings(
    listen_host: str,
    port: int,
    controller_port: int,
    *,
    node_id: int = 1,
    voters: str = "",
    replicas: int = 1,
    advertised_port: int = 0,
    side: tuple[int, int] | None = None,
) -> dict[str, str]:
    """A KRaft node (combined broker and controller) the project starts for itself, as properties.

    It listens on `listen_host`:`port` and is advertised to clients as 127.0.0.1:`advertised_port` (by default
    `port`: inside a container whose port is published on the same host port, that address reaches the broker
    from both sides; a fault proxy in front of the node is advertised instead); its controller listens on the
    loopback only. Alone it bootstraps its quorum by itself; in a cluster `voters` lists every controller
    (`id@host:port,...`) and `replicas` is the replication factor of internal and new topics, with a min ISR of
    2 and no unclean elections. Where its log directory is, is the caller's (`log.dirs`). `side`, a (port,
    advertised port) pair, adds a second client listener, SIDE: a client that bootstraps through it is told the
    SIDE addresses of every node, so a fault proxy there cuts that client off alone.
    """
    quorum = (
        {"controller.quorum.voters": voters}
        if voters
        else {"controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}"}
    )
    min_isr = str(min(2, replicas))
    listen = f",SIDE://127.0.0.1:{side[0]}" if side else ""
    advertise = f",SIDE://127.0.0.1:{side[1]}" if side else ""
    return {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        **quorum,
        "listeners": f"PLAINTEXT://{listen_host}:{port},CONTROLLER://127.0.0.1:{controller_port}{listen}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{advertised_port or port}{advertise}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        + (",SIDE:PLAINTEXT" if side else ""),
        "inter.broker.listener.name": "PLAINTEXT",
        "num.partitions": "6",
        "default.replication.factor": str(replicas),
        "min.insync.replicas": min_isr,
        "unclean.leader.election.enable": "false",
        "offsets.topic.replication.factor": str(replicas),
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": "10",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "log.retention.check.interval.ms": "60000",
        **NODE_TUNING,
    }


@dataclass
class NativeKafka(Server):
    """A KRaft node (combined broker and controller): alone by default, or one of a cluster's (`voters`)."""

    controller_port: int = 0
    node_id: int = 1
    voters: str = ""
    replicas: int = 1
    cluster_id: str = ""
    # The address clients are told, when a fault proxy sits in front of the node (0: its own port).
    advertised_port: int = 0
    # A second client listener and the proxy address it advertises (see broker_settings), or none.
    side: tuple[int, int] | None = None
    heap: str = "512m"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def broker_log(self) -> Path:
        """The broker's own log (log4j): group rebalances, topic creation, controller events."""
        return self.workdir / "broker.log"

    def _write_config(self) -> Path:
        cfg = self.workdir / "server.properties"
        settings = {
            **broker_settings(
                "127.0.0.1",
                self.port,
                self.controller_port,
                node_id=self.node_id,
                voters=self.voters,
                replicas=self.replicas,
                advertised_port=self.advertised_port,
                side=self.side,
            ),
            "log.dirs": str(self.workdir / "data"),
        }
        cfg.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        log4j = self.workdir / "log4j2.properties"
        log4j.write_text(
            "\n".join(
                [
                    "status = warn",
                    "appender.file.type = File",
                    "appender.file.name = file",
                    f"appender.file.fileName = {self.broker_log}",
                    "appender.file.layout.type = PatternLayout",
                    "appender.file.layout.pattern = [%d] %p %m (%c)%n",
                    "rootLogger.level = INFO",
                    "rootLogger.appenderRef.file.ref = file",
                    "",
                ]
            )
        )
        return cfg

    def _java(self, main: str, *args: str, heap: str | None = None) -> list[str]:
        libs = ensure_kafka_installed()
        heap = heap or self.heap
        return [
            "java",
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
            "-cp",
            f"{libs}/*",
            main,
            *args,
        ]

    def launch(self) -> None:
        """Format the storage once and start the node's process, without waiting for it to serve."""
        if self.running():
            return
        if not self.controller_port:
            # A lone node need not keep the controller port it was formatted with (--standalone records it): the
            # only voter, it elects itself wherever it listens and records its new endpoint (Kafka 4.4).
            self.controller_port = free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self._write_config()
        if not (self.workdir / "data" / "meta.properties").exists():
            # A lone controller bootstraps its quorum by itself; a cluster's voters are in the configuration.
            alone = [] if self.voters else ["--standalone"]
            cluster_id = self.cluster_id or new_cluster_id()
            run_captured(
                self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(cfg), *alone, heap="128m")
            )
        self._spawn(self._java("kafka.Kafka", str(cfg)))

    def start(self, timeout_s: float = 90.0, attempts: int = START_ATTEMPTS) -> None:
        """Format the storage once, start the broker and wait until a real client can use it.

        Alone, it starts again on fresh ports (its advertised listener with them) when another process took one,
        `attempts` starts at most (1: only on its own port, for a restart its clients know);
        a cluster's node keeps its own, which the other nodes' voters and its proxies name.
        """
        attempt = functools.partial(self._spawned, self.launch, self.ready, timeout_s, self.broker_log, self.logfile)
        self._start_moving(attempt, 1 if self.voters else attempts)

    def _move(self) -> None:
        # Either port may be the taken one; a lone controller elects itself wherever it listens (see launch).
        super()._move()
        self.controller_port = free_port()

    def _gone(self) -> str:
        return "" if self.running() else f"its process has ended (see {self.broker_log})"

    def ready(self) -> bool:
        """Alone: once it answers metadata and can create, write and read a topic. In a cluster: once it is a
        live broker in the cluster's metadata (the cluster as a whole is checked by KafkaCluster)."""
        if not self.running() or port_free(self.port):
            return False
        if self.voters:
            return self.node_id in live_brokers(self.bootstrap)
        return kafka_serves(self.bootstrap)


def live_brokers(bootstrap: str) -> set[int]:
    """The ids of the brokers the cluster's metadata lists as live (registered and not fenced)."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        brokers = admin.describe_cluster()["brokers"]
    finally:
        admin.close()
    return {int(broker["broker_id"]) for broker in brokers if not broker.get("is_fenced")}


def kafka_serves(bootstrap: str, replicas: int = 1) -> bool:
    """True once the brokers at `bootstrap` answer metadata and can create, write (acks=all) and read a topic
    of `replicas` replicas."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics([NewTopic("__quartet_ready", 1, replicas)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_block_ms=5000)
    try:
        meta = producer.send("__quartet_ready", b"ping").get(timeout=5)
    finally:
        producer.close(timeout=5)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=5000)
    try:
        tp = TopicPartition("__quartet_ready", 0)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        return any(r.value == b"ping" for r in consumer.poll(timeout_ms=5000).get(tp, []))
    finally:
        consumer.close()


# A cluster node's heap: three nodes, Redis, PostgreSQL, the services and a test run share two cores and 24 GiB.
CLUSTER_NODE_HEAP = "256m"


@dataclass
class KafkaCluster:
    """Several KRaft nodes, each broker and controller at once, voting in one static quorum.

    Combined nodes rather than three brokers and three controllers: three JVMs instead of six on two cores,
    and losing a node still loses one voter of three, the quorum Kafka needs to elect a leader.
    """

    name: str
    workdir: Path
    nodes: list[NativeKafka]

    @classmethod
    def at(
        cls,
        workdir: Path,
        ports: list[int],
        heap: str = CLUSTER_NODE_HEAP,
        advertised_ports: list[int] | None = None,
        sides: list[tuple[int, int]] | None = None,
    ) -> KafkaCluster:
        """Nodes 1..len(ports) under `workdir`, keeping the cluster id of an earlier start and its controller ports
        while any node runs or the ports are free.

        `advertised_ports`, if given, are what each node tells clients (and the other nodes) to connect to: a
        fault proxy's in front of it (toxiproxy#171), so that every connection after the bootstrap goes through it.
        `sides`, if given, add each node's second client listener (see broker_settings).
        """
        cluster_file = workdir / "cluster-id"
        cluster_id = cluster_file.read_text().strip() if cluster_file.exists() else new_cluster_id()
        # The running nodes' voters name the saved controller ports, so those stay while any node runs. With none
        # running, a port another process took meanwhile moves, and every node is configured with the new voters:
        # a static quorum keeps its voters in the configuration only, not in the formatted storage.
        dirs = [workdir / f"node-{i}" for i in range(1, len(ports) + 1)]
        ours = any(Server("kafka", 0, node).running() for node in dirs)
        controllers = [start_port(_saved_port(node, "controller-port"), None, ours=ours) for node in dirs]
        voters = ",".join(f"{i}@127.0.0.1:{port}" for i, port in enumerate(controllers, start=1))
        advertised = advertised_ports or [0] * len(ports)
        nodes = [
            NativeKafka(
                f"kafka-{i}",
                port,
                workdir / f"node-{i}",
                controller_port=controller,
                node_id=i,
                voters=voters,
                replicas=min(3, len(ports)),
                cluster_id=cluster_id,
                advertised_port=advertised[i - 1],
                side=sides[i - 1] if sides else None,
                heap=heap,
            )
            for i, (port, controller) in enumerate(zip(ports, controllers, strict=True), start=1)
        ]
        return cls("kafka", workdir, nodes)

    def described(self) -> dict[str, list[Any]]:
        """Each node's port, the address it advertises and its side listener, as `saved` reads them back."""
        return {
            "ports": [node.port for node in self.nodes],
            "advertised": [node.advertised_port for node in self.nodes],
            "sides": [list(node.side) if node.side else None for node in self.nodes],
        }

    @classmethod
    def saved(cls, workdir: Path, nodes: int | None = None) -> KafkaCluster | None:
        """The cluster a `start` under `workdir` described (of `nodes` nodes, when given), with the same ports,
        advertised addresses and side listeners, so that a node started again keeps its proxies; None if none."""
        try:
            data = json.loads((workdir / CLUSTER_FILE).read_text())
        except (OSError, ValueError):
            return None
        ports = [int(port) for port in data["ports"]]
        if nodes is not None and len(ports) != nodes:
            return None
        advertised = [int(port) for port in data["advertised"]]
        sides = [(int(side[0]), int(side[1])) for side in data["sides"] if side]
        return cls.at(
            workdir,
            ports,
            advertised_ports=advertised if any(advertised) else None,
            sides=sides if len(sides) == len(ports) else None,
        )

    @property
    def port(self) -> int:
        """The first node's port (where `make up` tells the host to look first)."""
        return self.nodes[0].port

    @property
    def bootstrap(self) -> str:
        """Every node, as a comma list: a client finds the cluster through any one that is up."""
        return ",".join(node.bootstrap for node in self.nodes)

    @property
    def broker_log(self) -> Path:
        """The first node's broker log."""
        return self.nodes[0].broker_log

    def node(self, node_id: int) -> NativeKafka:
        """The node with this id (1-based)."""
        return self.nodes[node_id - 1]

    def pid(self) -> int | None:
        """The first live node's pid."""
        return next((pid for node in self.nodes if (pid := node.pid()) is not None), None)

    def running(self) -> bool:
        """True if any node's process is alive."""
        return any(node.running() for node in self.nodes)

    def start(self, timeout_s: float = 180.0) -> None:
        """Start every node together (no quorum forms until two do), then wait until each is a live broker
        and the cluster takes an acks=all write to a topic replicated on all of them."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "cluster-id").write_text(self.nodes[0].cluster_id)
        (self.workdir / "nodes").write_text(str(len(self.nodes)))
        (self.workdir / CLUSTER_FILE).write_text(json.dumps(self.described()))
        for node in self.nodes:
            _save_port(node)
            (node.workdir / "controller-port").write_text(str(node.controller_port))
            node.launch()
        for node in self.nodes:
            wait_for(
                node.ready,
                f"Kafka node {node.node_id} on {node.bootstrap}",
                timeout_s,
                node.broker_log,
                gone=node._gone,
            )
        replicas = self.nodes[0].replicas
        wait_for(lambda: kafka_serves(self.bootstrap, replicas), f"Kafka cluster on {self.bootstrap}", timeout_s)

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM every node at once (a node shutting down last has no quorum to hand its leadership to, so
        waiting for each in turn would only wait longer), then wait; SIGKILL what will not go."""
        for node in self.nodes:
            if (pid := node.pid()) is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        for node in self.nodes:
            node.stop(timeout_s)

    def kill(self) -> None:
        """SIGKILL every node."""
        for node in self.nodes:
            node.kill()


@dataclass
class NativeRedis(Server):
    """A Redis server with no persistence: it is only ever a cache here."""

    def start(self, timeout_s: float = 30.0, attempts: int = START_ATTEMPTS) -> None:
        """Start redis-server and wait for PING, again on a fresh port when another process took its own
        (`attempts` starts at most; 1: only on its own port, for a restart its clients know)."""
        if self.running():
            return
        self._start_moving(
            functools.partial(self._spawned, self._launch, self.ready, timeout_s, self.logfile), attempts
        )

    def _launch(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._spawn(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.workdir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ]
        )

    def ready(self) -> bool:
        """True when PING answers."""
        import redis

        return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1).ping())

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


# The roles deploy/postgres/roles.sql creates, each with its password's variable; the server's superuser is
# "postgres" (POSTGRES_PASSWORD), as in the official image Compose runs.
SERVICE_ROLES = ("training", "planning", "rental", "simulator")
ROLES_SQL = ROOT / "deploy" / "postgres" / "roles.sql"
# The simulator has no database of its own: it reads the rental manager's for its audit.
ROLE_DATABASES = {"training": "training", "planning": "planning", "rental": "rental", "simulator": "rental"}


def password_variable(role: str) -> str:
    """The environment variable holding a service role's PostgreSQL password (natively and in Compose)."""
    return f"POSTGRES_{role.upper()}_PASSWORD"


def role_env(role: str, host: str, port: int | str, passwords: dict[str, str]) -> dict[str, str]:
    """What a service process needs to reach its database as its own role; libpq reads the password from PGPASSWORD.

    The simulator reads the rental manager's database for its audit, and starts training and planning workers:
    those get their own roles' URLs, each carrying its password, since one PGPASSWORD cannot serve three roles.
    """
    url = f"postgresql://{role}@{host}:{port}/{ROLE_DATABASES[role]}"
    password = passwords[password_variable(role)]
    if role != "simulator":
        return {"DATABASE_URL": url, "PGPASSWORD": password}
    env = {"SIMULATOR_RENTAL_DATABASE_URL": url, "PGPASSWORD": password}
    for worker in ("training", "planning"):
        secret = quote(passwords[password_variable(worker)], safe="")
        env[f"SIMULATOR_WORKER_DATABASE_URL_{worker.upper()}"] = (
            f"postgresql://{worker}:{secret}@{host}:{port}/{ROLE_DATABASES[worker]}"
        )
    return env


def _write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner may read (created 0600, never world-readable in between)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)


# Rewritten at every start. The superuser's password-less way in is the server's socket, which only the
# server's owner (and root) may open; everything over TCP proves a password with SCRAM.
PG_HBA = """# Written by quartet_tools.infra at every start of the server; edits here are replaced.
local   all   postgres                  trust
host    all   all        127.0.0.1/32   scram-sha-256
"""
# pg_ctl's -t bounds its own wait; the process gets this long beyond it to say why it stopped waiting.
PG_CTL_GRACE_S = 15.0


@dataclass
class NativePostgres(Server):
    """A PostgreSQL cluster owned by the `postgres` user (the server refuses to run as root).

    Each service has its own database and LOGIN role (deploy/postgres/roles.sql), provisioned at every start;
    passwords come from the environment (`POSTGRES_PASSWORD`, `POSTGRES_<ROLE>_PASSWORD`) or are generated
    once into `passwords.json` beside the data, readable by its owner only.
    """

    database: str = "quartet"

    def _as_postgres(self, cmd: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *cmd]
        return cmd

    def pid(self) -> int | None:
        """The postmaster's pid from its own pidfile."""
        pidfile = self.workdir / "data" / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return None
        return pid

    @property
    def secrets_file(self) -> Path:
        """Where generated passwords are kept (0600)."""
        return self.workdir / "passwords.json"

    def passwords(self) -> dict[str, str]:
        """Every role's password by variable: the environment's if set, else the one generated here once."""
        import secrets

        names = ["POSTGRES_PASSWORD", *(password_variable(role) for role in SERVICE_ROLES)]
        try:
            saved: dict[str, str] = json.loads(self.secrets_file.read_text())
        except FileNotFoundError:
            saved = {}
        missing = [name for name in names if name not in saved]
        if missing:
            saved.update({name: secrets.token_urlsafe(24) for name in missing})
            _write_private(self.secrets_file, json.dumps(saved, indent=2))
        return {name: os.environ.get(name) or saved[name] for name in names}

    def start(self, timeout_s: float = 120.0) -> None:
        """initdb once, start the server, provision the roles and databases, and wait until it answers.

        A server already running (one `make up` started before, say) gets the access rules and the roles too.
        `timeout_s` bounds pg_ctl's wait for the server to accept connections (its -t) and then the roles' check.
        """
        bindir = postgres_bindir()
        data = self.workdir / "data"
        if self.running():
            (data / "pg_hba.conf").write_text(PG_HBA)
            run_captured(self._as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "reload"]))
            self._provision(bindir)
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
        if not (data / "PG_VERSION").exists():
            run_captured(
                self._as_postgres(
                    [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
                )
            )
        (data / "pg_hba.conf").write_text(PG_HBA)
        self._start_moving(functools.partial(self._pg_ctl_start, bindir, timeout_s))
        self._provision(bindir)
        wait_for(self.ready, f"PostgreSQL on 127.0.0.1:{self.port}", timeout_s, self.logfile)

    def _pg_ctl_start(self, bindir: Path, timeout_s: float) -> str | None:
        """`pg_ctl start -w -t`: None once the server accepts connections, else pg_ctl's words and what the server
        logged meanwhile (why the postmaster exited, or how far it got in `timeout_s`)."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.workdir} -c unix_socket_permissions=0700 "
            "-c password_encryption=scram-sha-256 -c fsync=on -c max_connections=200 -c shared_buffers=128MB "
            "-c lc_messages=C"
        )
        wait = str(math.ceil(timeout_s))
        logged = _log_size(self.logfile)
        cmd = [str(bindir / "pg_ctl"), "-D", str(self.workdir / "data"), "-o", options, "-l", str(self.logfile)]
        try:
            run_captured(self._as_postgres([*cmd, "-w", "-t", wait, "start"]), timeout=timeout_s + PG_CTL_GRACE_S)
        except subprocess.CalledProcessError as exc:
            return f"{exc.stdout}{exc.stderr}{_logged_since(self.logfile, logged)}"
        return None

    def _provision(self, bindir: Path) -> None:
        """Set the superuser's password, create `database`, and run roles.sql, as the superuser over the socket."""
        script = (
            "\\getenv admin_password POSTGRES_PASSWORD\n"
            "ALTER ROLE postgres PASSWORD :'admin_password';\n"
            "SELECT format('CREATE DATABASE %I', :'database')"
            " WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'database') \\gexec\n"
        )
        psql = [str(bindir / "psql"), "-X", "-q", "-h", str(self.workdir), "-p", str(self.port), "-U", "postgres"]
        # The passwords travel in the environment, never on a command line other users could read.
        run_captured(
            self._as_postgres([*psql, "-d", "postgres", "-v", f"database={self.database}", "-f", "-"]),
            input=script + ROLES_SQL.read_text(),
            env={**os.environ, **self.passwords()},
        )

    def ready(self) -> bool:
        """True when a connection succeeds."""
        import psycopg

        with psycopg.connect(self.admin_url, connect_timeout=2) as conn:
            return conn.execute("SELECT 1").fetchone() is not None

    def stop(self, timeout_s: float = 30.0) -> None:
        """A fast shutdown through pg_ctl."""
        if not self.running():
            return
        bindir = postgres_bindir()
        with contextlib.suppress(subprocess.CalledProcessError):
            run_captured(
                self._as_postgres([str(bindir / "pg_ctl"), "-D", str(self.workdir / "data"), "-m", "fast", "stop"])
            )

    def _superuser_url(self, database: str) -> str:
        password = quote(self.passwords()["POSTGRES_PASSWORD"], safe="")
        return f"postgresql://postgres:{password}@127.0.0.1:{self.port}/{database}"

    @property
    def admin_url(self) -> str:
        """The superuser on the server's maintenance database: for provisioning and tests, never for services."""
        return self._superuser_url("postgres")

    @property
    def url(self) -> str:
        """The superuser on the `quartet` database, where tests make their private databases."""
        return self._superuser_url(self.database)

    def service_env(self, role: str) -> dict[str, str]:
        """A service role's database settings on this server (see `role_env`)."""
        return role_env(role, "127.0.0.1", self.port, self.passwords())


# Every service's settings prefix: each reads its own topic settings (QUARTET_ is the CLI's).
SETTINGS_PREFIXES = ("QUARTET_", "TRAINING_", "PLANNER_", "RENTAL_", "SIMULATOR_")
# Where a cluster's nodes live under a stack's work directory (one broker alone lives in "kafka").
CLUSTER_DIR = "kafka-cluster"
# What a cluster's start wrote about its nodes (KafkaCluster.saved), beside their directories.
CLUSTER_FILE = "cluster.json"


@dataclass
class Stack:
    """The three servers together, as one unit that tests and `make` start and stop."""

    kafka: NativeKafka | KafkaCluster
    redis: NativeRedis
    postgres: NativePostgres

    @classmethod
    def at(cls, workdir: Path, *, standard_ports: bool, kafka_nodes: int = 1) -> Stack:
        """Servers under `workdir`, each on the port its last start saved while it still runs there or the port is
        free (after `make down` another process may have taken it), else on its standard port when `standard_ports`
        and free, else on a free port.

        With `kafka_nodes` above 1, Kafka is a cluster of that many nodes on consecutive standard ports.
        """

        def placed(server: ServerT, standard: int) -> ServerT:
            saved = _saved_port(server.workdir)
            server.port = start_port(saved, standard if standard_ports else None, ours=server.running())
            return server

        kafka: NativeKafka | KafkaCluster
        if kafka_nodes > 1:
            kafka = _cluster_at(workdir / CLUSTER_DIR, kafka_nodes, standard_ports=standard_ports)
        else:
            kafka = placed(NativeKafka("kafka", 9092, workdir / "kafka"), 9092)
        return cls(
            kafka=kafka,
            redis=placed(NativeRedis("redis", 6379, workdir / "redis"), 6379),
            postgres=placed(NativePostgres("postgres", 5432, workdir / "postgres"), 5432),
        )

    @property
    def kafka_nodes(self) -> int:
        """How many Kafka nodes the stack runs."""
        return len(self.kafka.nodes) if isinstance(self.kafka, KafkaCluster) else 1

    def start(self) -> None:
        """Start all three (the slow broker last, once the quick ones are up)."""
        for server in (self.redis, self.postgres, self.kafka):
            _save_port(server)
            server.start()
            # A server moves to a fresh port when another process took its own between `at` and its start.
            _save_port(server)

    def stop(self) -> None:
        """Stop all three."""
        for server in (self.kafka, self.redis, self.postgres):
            server.stop()

    def stop_kafka(self) -> None:
        """A clean broker shutdown (SIGTERM; SIGKILL after 30 s), for fault injection."""
        self.kafka.stop()

    def start_kafka(self) -> None:
        """Start the broker again on the same port and data, and wait until a client can use it."""
        if isinstance(self.kafka, KafkaCluster):
            self.kafka.start()  # its nodes never move
            return
        # Its clients know this port: moving would leave them on a dead one, so a taken port fails loudly.
        self.kafka.start(attempts=1)

    def stop_redis(self) -> None:
        """Stop Redis (a cache: its contents are lost), for fault injection."""
        self.redis.stop()

    def start_redis(self) -> None:
        """Start Redis again on the same port, and wait for PING."""
        self.redis.start(attempts=1)

    def env(self) -> dict[str, str]:
        """The settings that point services at these servers; with a cluster, every node as a bootstrap server
        and every service's topics replicated on three of them (min ISR 2, see TopicSpec.config)."""
        env = {"KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap, "REDIS_URL": self.redis.url}
        if self.kafka_nodes > 1:
            replicas = str(min(3, self.kafka_nodes))
            env.update({f"{prefix}TOPIC_REPLICATION_FACTOR": replicas for prefix in SETTINGS_PREFIXES})
            # Where the simulator finds the cluster's description, to act on its nodes and proxies.
            env["SIMULATOR_CLUSTER_STATE"] = str(self.kafka.workdir)
        return env


def _cluster_at(workdir: Path, nodes: int, *, standard_ports: bool) -> KafkaCluster:
    """The cluster under `workdir` as its last start left it while any node runs (its voters and proxies cannot
    move one node at a time); stopped, each node on its saved port while free, else as `Stack.at` picks."""
    saved = KafkaCluster.saved(workdir, nodes)
    if saved is not None and saved.running():
        return saved
    ports = [
        start_port(_saved_port(workdir / f"node-{i}"), 9091 + i if standard_ports else None, ours=False)
        for i in range(1, nodes + 1)
    ]
    return KafkaCluster.at(workdir, ports)


def _saved_port(workdir: Path, name: str = "port") -> int | None:
    try:
        return int((workdir / name).read_text())
    except (OSError, ValueError):
        return None


def _save_port(server: Server | KafkaCluster) -> None:
    server.workdir.mkdir(parents=True, exist_ok=True)
    (server.workdir / "port").write_text(str(server.port))


# ---- make infra-up / infra-down -----------------------------------------------------------------------------


COMPOSE_MARKER = STATE_DIR / "docker"


@contextlib.contextmanager
def _compose() -> Iterator[list[str]]:
    yield compose_command()


def compose_env_files() -> list[Path]:
    """The files Compose interpolates docker-compose.yml's `${}` from: .env.example, the API keys `make up` wrote
    and .env (those present, later ones winning); the file hands each container only its own."""
    return [path for path in (ROOT / ".env.example", API_KEYS_FILE, ROOT / ".env") if path.exists()]


def compose_command() -> list[str]:
    """`docker compose` for the repository's docker-compose.yml, with `compose_env_files()`."""
    env_files = compose_env_files()
    return [
        "docker",
        "compose",
        "--project-directory",
        str(ROOT),
        "-f",
        str(ROOT / "docker-compose.yml"),
        *(arg for path in env_files for arg in ("--env-file", str(path))),
    ]


def compose_active() -> bool:
    """True when `make infra-up` chose Compose (so `make up` runs the services there too)."""
    return COMPOSE_MARKER.exists()


def compose_values() -> dict[str, str]:
    """The settings Compose reads: .env.example, overridden by .env."""
    from dotenv import dotenv_values

    values: dict[str, str] = {}
    for name in (".env.example", ".env"):
        if (ROOT / name).exists():
            values.update({k: v for k, v in dotenv_values(ROOT / name).items() if v is not None})
    return values


def compose_host_env() -> dict[str, str]:
    """Settings for host-side tools (the `quartet` CLI) reaching the servers Compose publishes; no database role."""
    return {"KAFKA_BOOTSTRAP_SERVERS": "localhost:9092", "REDIS_URL": "redis://localhost:6379/0"}


def compose_simulator_env() -> dict[str, str]:
    """The simulator's database settings on the host against Compose's PostgreSQL (its role's, from .env)."""
    return role_env("simulator", "localhost", 5432, compose_values())


class InfraSettings(BaseSettings):
    """What `make infra-up` starts: one Kafka broker (the default) or a cluster of `QUARTET_KAFKA_NODES`."""

    model_config = SettingsConfigDict(env_prefix="QUARTET_", extra="ignore")

    kafka_nodes: int = Field(
        1, ge=1, le=5, description="Kafka nodes; above 1 a native KRaft cluster (RF 3, min ISR 2)."
    )


def start_native(workdir: Path, *, standard_ports: bool, kafka_nodes: int) -> Stack:
    """`make up`'s native servers under `workdir`; a cluster behind fault proxies and described there for the
    simulator (`quartet_tools.cluster.start_controlled`)."""
    stack = Stack.at(workdir, standard_ports=standard_ports, kafka_nodes=kafka_nodes)
    if isinstance(stack.kafka, KafkaCluster):
        from quartet_tools.cluster import start_controlled  # it imports this module

        start_controlled(stack)
    stack.start()
    return stack


def up() -> dict[str, str]:
    """Start Kafka, Redis and PostgreSQL (Compose if Docker answers, natively otherwise); harmless twice.

    A Kafka cluster (QUARTET_KAFKA_NODES above 1) always runs natively; Compose has its own `cluster` profile.
    """
    nodes = InfraSettings().kafka_nodes
    if nodes == 1 and docker_available():
        # The servers are the project's own images (no registry to pull from): built, or found in docker's cache.
        from quartet_tools import images  # it imports this module

        images.build(images.SERVERS)
        with _compose() as compose:
            subprocess.run([*compose, "up", "-d", "--wait", *images.SERVERS], check=True)
        env = compose_host_env()
        simulator = compose_simulator_env()
        COMPOSE_MARKER.parent.mkdir(parents=True, exist_ok=True)
        COMPOSE_MARKER.write_text("compose")
    else:
        stack = start_native(STATE_DIR, standard_ports=True, kafka_nodes=nodes)
        env = stack.env()
        simulator = stack.postgres.service_env("simulator")
    # The simulator's own default is relative to its working directory; on the host, runs land in the repo's.
    simulator["SIMULATOR_RUNS_DIR"] = str(LOCAL / "simulator" / "runs")
    _write_private(SIMULATOR_ENV_FILE, shell_exports(simulator))
    LOCAL.mkdir(exist_ok=True)
    ENV_FILE.write_text(shell_exports(env))
    return env


def shell_exports(env: dict[str, str]) -> str:
    """Shell `export` lines, quoted so a password with any character survives `source`."""
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())


def down() -> None:
    """Stop exactly what `up` started; harmless when nothing runs."""
    if compose_active():
        with _compose() as compose:
            subprocess.run([*compose, "stop", "kafka", "redis", "postgres"], check=False)
        COMPOSE_MARKER.unlink()
    elif STATE_DIR.exists():
        # A single broker left from before a cluster was asked for (or the other way round) goes too.
        Stack.at(STATE_DIR, standard_ports=True).stop()
        nodes = _saved_port(STATE_DIR / CLUSTER_DIR, "nodes")
        if nodes:
            Stack.at(STATE_DIR, standard_ports=True, kafka_nodes=nodes).kafka.stop()
        # The fault proxy in front of a cluster's nodes (see quartet_tools.cluster.start_controlled).
        Server("toxiproxy", 0, STATE_DIR / CLUSTER_DIR / "toxiproxy").stop()
    for written in (ENV_FILE, SIMULATOR_ENV_FILE):
        written.unlink(missing_ok=True)


def status() -> dict[str, object]:
    """What runs, where."""
    stack = Stack.at(STATE_DIR, standard_ports=True, kafka_nodes=saved_nodes())
    kafka = stack.kafka.nodes if isinstance(stack.kafka, KafkaCluster) else [stack.kafka]
    return {
        s.name: {"running": s.running(), "port": s.port, "pid": s.pid()} for s in (*kafka, stack.redis, stack.postgres)
    }


def saved_nodes() -> int:
    """How many Kafka nodes the native `up` runs: a cluster's, while any of its nodes is alive; else 1."""
    nodes = _saved_port(STATE_DIR / CLUSTER_DIR, "nodes") or 1
    if nodes > 1 and Stack.at(STATE_DIR, standard_ports=True, kafka_nodes=nodes).kafka.running():
        return nodes
    return 1


def run_action(prog: str, action: Callable[[], object]) -> int:
    """Run a command-line action: 0 when it succeeds, 1 with the failure (and the command's stderr) when not."""
    try:
        action()
    except (InfraError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        print(f"{prog}: {exc}\n{detail}", file=sys.stderr)
        return 1
    return 0


def print_env(env: dict[str, str]) -> None:
    """Print `env` as KEY=value lines, as the command-line actions hand settings to `make`."""
    for key, value in env.items():
        print(f"{key}={value}")


def _install() -> None:
    ensure_kafka_installed()
    redis_server_binary()
    postgres_bindir()


def _install_tools() -> None:
    from quartet_tools.metrics import ensure_prometheus  # it imports this module
    from quartet_tools.toxiproxy import ensure_toxiproxy  # it imports this module too
    from quartet_tools.traces import ensure_zipkin  # it imports this module too

    print(ensure_helm())
    print(ensure_promtool())
    print(ensure_chromium())
    print(ensure_toxiproxy())
    # The OpenTelemetry Collector is the longest build by far: `make test` builds it in the background while
    # its first tests run (quartet_tools.testrun), and `make traces` when first asked.
    print(ensure_zipkin())
    print(ensure_prometheus())


def main(argv: list[str] | None = None) -> int:
    """`python -m quartet_tools.infra up|down|status|install|install-tools`."""
    actions: dict[str, Callable[[], object]] = {
        "up": lambda: print_env(up()),
        "down": down,
        "install": _install,
        "install-tools": _install_tools,
        "status": lambda: print(json.dumps(status(), indent=2)),
    }
    parser = argparse.ArgumentParser(prog="quartet-infra", description=__doc__)
    parser.add_argument("action", choices=list(actions))
    return run_action("quartet-infra", actions[parser.parse_args(argv).action])


if __name__ == "__main__":
    raise SystemExit(main())
