"""Latency and bandwidth on a node of Compose's `cluster` profile, on a real engine: the simulator's ComposeCluster
adds the toxic on the profile's Toxiproxy in front of the node, and a Kafka client on the host sees the node
answer later or slower, then as before once the toxic is taken off. A node black-holed or cut off leaves the other
nodes' health checks passing: each checks itself alone.

Needs a Docker engine (deselected elsewhere, tests/deploy/conftest.py). The three nodes run as a Compose project
of their own on free host ports, and `down -v` removes it at the end.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from quartet_shared.net import free_port
from quartet_shared.toxiproxy import BOTH_WAYS, ONE_WAY
from quartet_tools import images
from quartet_tools.infra import compose_command
from simulator.servers import ComposeCluster

from tests.deploy.compose_file import compose
from tests.support.effects import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.integration]

NODES = (1, 2, 3)
# The node the toxics go on, and the one its round trips are compared with.
SLOWED = 2
RECORD = 8192
RECORDS = 32
# The listener each node's health check bootstraps on, which every node advertises as that same address.
OWN_HEALTH_LISTENER = "127.0.0.1:19099"
BROKER_LINE = re.compile(r"^(\S+) \(id: (\d+)\b[^)]*\) -> ", re.MULTILINE)


@dataclass(frozen=True)
class Cluster:
    """The Compose project of the three nodes, the simulator's control of it, and each node's host port."""

    compose: list[str]
    control: ComposeCluster
    ports: dict[int, int]

    @property
    def bootstrap(self) -> str:
        return ",".join(f"localhost:{port}" for port in self.ports.values())


def _override(path: Path, ports: dict[int, int]) -> Path:
    """Host ports of the test's own on the proxy (`!override` replaces the file's list), which the nodes advertise.

    The API's port is left for the engine to choose: ComposeCluster finds where it is published."""
    published = ", ".join(f'"127.0.0.1:{port}:{9191 + n}"' for n, port in ports.items())
    advertised = {n: compose()["services"][f"kafka-{n}"]["environment"]["KAFKA_ADVERTISED_LISTENERS"] for n in ports}
    services = "".join(
        f"""  kafka-{n}:
    environment:
      KAFKA_ADVERTISED_LISTENERS: {advertised[n].replace(f"localhost:{9191 + n}", f"localhost:{port}")}
"""
        for n, port in ports.items()
    )
    path.write_text(f'services:\n  toxiproxy:\n    ports: !override [{published}, "127.0.0.1::8474"]\n{services}')
    return path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The `cluster` profile's three nodes up and healthy, from images built from this checkout."""
    images.build(["kafka", "toxiproxy"])
    ports = {n: free_port() for n in NODES}
    override = _override(tmp_path_factory.mktemp("compose") / "override.yml", ports)
    name = f"quartet-toxics-{os.urandom(4).hex()}"
    command = [*compose_command(), "-f", str(override), "-p", name, "--profile", "cluster"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*command, *args], capture_output=True, text=True, timeout=600)

    try:
        up = run("up", "-d", "--wait", *(f"kafka-{n}" for n in NODES))
        if up.returncode != 0:
            pytest.fail(f"compose up failed:\n{up.stderr[-3000:]}\n{run('logs', '--tail', '60').stdout[-6000:]}")
        yield Cluster(command, ComposeCluster(docker.from_env(), name), ports)
    finally:
        run("down", "--volumes", "--remove-orphans")


@pytest.fixture(scope="module")
def topic(cluster: Cluster) -> str:
    """A topic of one partition whose only replica is on the slowed node, holding RECORDS records of RECORD bytes."""
    name = f"toxics-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        admin.create_topics([NewTopic(name, replica_assignments={0: [SLOWED]})])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks=1)
    try:
        for _ in range(RECORDS):
            producer.send(name, os.urandom(RECORD), partition=0).get(timeout=60)
    finally:
        producer.close()
    return name


def produce_round_trip_s(cluster: Cluster, topic: str, samples: int = 7) -> float:
    """The median time the slowed node takes to answer a produce request (acks=1: no replica waited for)."""
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks=1, linger_ms=0)
    try:
        producer.send(topic, b"warm", partition=0).get(timeout=60)
        times = []
        for _ in range(samples):
            started = time.monotonic()
            producer.send(topic, b"ping", partition=0).get(timeout=60)
            times.append(time.monotonic() - started)
    finally:
        producer.close()
    return statistics.median(times)


def fetch_all_s(cluster: Cluster, topic: str) -> float:
    """Seconds to read the topic's first RECORDS records from the slowed node (connections already open)."""
    consumer = KafkaConsumer(bootstrap_servers=cluster.bootstrap, enable_auto_commit=False, group_id=None)
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek(partition, 0)
        started = time.monotonic()
        got, deadline = 0, started + 120
        while got < RECORDS and time.monotonic() < deadline:
            got += sum(len(batch) for batch in consumer.poll(timeout_ms=1000).values())
        assert got >= RECORDS, f"only {got} of {RECORDS} records read within 120 s"
        return time.monotonic() - started
    finally:
        consumer.close()


def test_200_ms_of_latency_on_a_node_adds_to_its_round_trip_and_goes_again(cluster: Cluster, topic: str) -> None:
    """Through the proxy, whatever the engine's kernel can shape (this one has no netem qdisc)."""
    before = produce_round_trip_s(cluster, topic)
    cluster.control.add_toxic(SLOWED, "latency", "latency", {"latency": 200, "jitter": 0}, ONE_WAY)
    try:
        slowed = produce_round_trip_s(cluster, topic)
    finally:
        cluster.control.remove_toxic(SLOWED, "latency", ONE_WAY)
    after = produce_round_trip_s(cluster, topic)
    print(f"produce round trip to node {SLOWED}: {before:.4f} s, {slowed:.4f} s with 200 ms, {after:.4f} s after")
    assert slowed - before >= 0.150
    assert after < slowed - 0.150


def test_a_64_kib_per_s_limit_on_a_node_slows_what_it_sends_to_that_rate_and_goes_again(
    cluster: Cluster, topic: str
) -> None:
    """256 KiB read from the node: at 64 KiB/s (Toxiproxy's 66 KB/s) that takes about 4 s, then as before."""
    before = fetch_all_s(cluster, topic)
    cluster.control.add_toxic(SLOWED, "bandwidth", "bandwidth", {"rate": 66}, ONE_WAY)
    try:
        limited = fetch_all_s(cluster, topic)
    finally:
        cluster.control.remove_toxic(SLOWED, "bandwidth", ONE_WAY)
    after = fetch_all_s(cluster, topic)
    size = RECORDS * RECORD
    print(f"{size} bytes from node {SLOWED}: {before:.3f} s, {limited:.3f} s at 66 KB/s, {after:.3f} s after")
    # Toxiproxy's bandwidth toxic writes at most 66,000 bytes a second after the first chunk.
    assert limited >= (size - 66000) / 66000 * 0.9
    assert size / limited <= 66000 * 1.25
    assert after < limited / 2


def own_health_check(cluster: Cluster, node: int) -> tuple[int, str, float]:
    """Run the node's Compose health check command in its container, as the engine does: code, output, seconds."""
    labels = [f"com.docker.compose.project={cluster.control.project}", f"com.docker.compose.service=kafka-{node}"]
    (container,) = cluster.control.client.containers.list(filters={"label": labels})
    kind, *command = container.attrs["Config"]["Healthcheck"]["Test"]
    started = time.monotonic()
    code, output = container.exec_run(command if kind == "CMD" else ["sh", "-c", *command])
    return code, output.decode(errors="replace"), time.monotonic() - started


def brokers_asked(output: str) -> list[tuple[str, int]]:
    """The (address, id) of each broker the check's tool asked, from its output (`ADDRESS (id: N ...) -> ...`)."""
    return [(address, int(node)) for address, node in BROKER_LINE.findall(output)]


def assert_each_checks_itself_alone(cluster: Cluster, nodes: list[int]) -> None:
    """Each node's check passes at once, every request it sent answered, and every broker it asked (each one the
    metadata lists: a fenced node is not) is at the node's own loopback listener."""
    for node in nodes:
        code, output, took = own_health_check(cluster, node)
        assert code == 0 and "ERROR" not in output, f"kafka-{node}'s health check:\n{output[-3000:]}"
        # Its JVM's start on the loaded host, not a wait: a request to a black-holed broker alone waits 5 s.
        assert took < 15, f"kafka-{node}'s health check took {took:.1f} s"
        asked = brokers_asked(output)
        assert {address for address, _ in asked} == {OWN_HEALTH_LISTENER}, output[-3000:]
        assert node in {node_id for _, node_id in asked}, output[-3000:]


def test_a_node_black_holed_or_cut_off_leaves_the_other_nodes_health_checks_passing(cluster: Cluster) -> None:
    """A timeout toxic both ways on the node's proxies, then the node disconnected from its networks: through a
    proxy the other nodes' checks waited on it and reported it failed; now each asks itself alone."""
    others = [n for n in NODES if n != SLOWED]
    cluster.control.add_toxic(SLOWED, "hole", "timeout", {"timeout": 0}, BOTH_WAYS)
    try:
        assert_each_checks_itself_alone(cluster, others)
    finally:
        cluster.control.remove_toxic(SLOWED, "hole", BOTH_WAYS)
    cluster.control.isolate(SLOWED)
    try:
        assert_each_checks_itself_alone(cluster, others)
    finally:
        cluster.control.rejoin(SLOWED)

    def whole_again() -> bool:
        outputs = [own_health_check(cluster, node)[1] for node in NODES]
        return all(sorted(node for _, node in brokers_asked(output)) == list(NODES) for output in outputs)

    # Rejoined, the node is unfenced within its session timeout (6 s) and every check lists all three again.
    wait_until(whole_again, 120, "every node's check to list the three nodes again", interval_s=2)
    assert_each_checks_itself_alone(cluster, list(NODES))
