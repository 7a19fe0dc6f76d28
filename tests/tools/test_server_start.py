"""Redis and the lone Kafka broker start again on a fresh port when another process took the one found free
before the server could bind it, as PostgreSQL does (tests/tools/test_postgres_start.py), and `make up` saves
where they moved to."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from kafka.admin import KafkaAdminClient
from quartet_shared.net import free_port
from quartet_tools.infra import InfraError, NativeKafka, NativeRedis, Stack, kafka_serves

from tests.support.listening import listening
from tests.support.started import StartedKafka, StartedPostgres, StartedRedis


def _advertised_ports(bootstrap: str) -> set[int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        return {int(broker["port"]) for broker in admin.describe_cluster()["brokers"]}
    finally:
        admin.close()


@pytest.mark.integration
def test_redis_leaves_a_taken_port_for_a_fresh_one_and_the_stack_saves_it(tmp_path: Path) -> None:
    with listening() as taken:
        held = taken.getsockname()[1]
        stack = Stack(
            kafka=StartedKafka("kafka", 9092, tmp_path / "kafka"),
            redis=NativeRedis("redis", held, tmp_path / "redis"),
            postgres=StartedPostgres("postgres", 5432, tmp_path / "postgres"),
        )
        try:
            stack.start()
            assert stack.redis.port != held
            assert redis.Redis(host="127.0.0.1", port=stack.redis.port, socket_timeout=5).ping()
        finally:
            stack.redis.stop()
    assert (tmp_path / "redis" / "port").read_text() == str(stack.redis.port)
    assert f"127.0.0.1:{held}: bind: Address already in use" in stack.redis.logfile.read_text()


@pytest.mark.integration
def test_the_lone_broker_leaves_a_taken_port_advertising_the_fresh_one_and_the_stack_saves_it(tmp_path: Path) -> None:
    with listening() as taken:
        held = taken.getsockname()[1]
        stack = Stack(
            kafka=NativeKafka("kafka", held, tmp_path / "kafka", heap="256m"),
            redis=StartedRedis("redis", 6379, tmp_path / "redis"),
            postgres=StartedPostgres("postgres", 5432, tmp_path / "postgres"),
        )
        try:
            stack.start()
            assert stack.kafka.port != held
            # Clients are told the new port: a bootstrap there finds the broker at the address it advertises.
            assert _advertised_ports(stack.kafka.bootstrap) == {stack.kafka.port}
            assert kafka_serves(stack.kafka.bootstrap)
        finally:
            stack.kafka.stop()
    assert (tmp_path / "kafka" / "port").read_text() == str(stack.kafka.port)
    assert "Address already in use" in stack.kafka.broker_log.read_text() + stack.kafka.logfile.read_text()


@pytest.mark.integration
def test_a_cluster_node_keeps_its_port_and_says_why_it_did_not_start(tmp_path: Path) -> None:
    """A cluster's node is named by the other nodes' voters and its proxies: it must not move by itself."""
    controller = free_port()
    with listening() as taken:
        held = taken.getsockname()[1]
        node = NativeKafka(
            "kafka-1",
            held,
            tmp_path / "node-1",
            controller_port=controller,
            voters=f"1@127.0.0.1:{controller}",
            heap="256m",
        )
        try:
            with pytest.raises(InfraError, match="Address already in use"):
                node.start(timeout_s=120)
        finally:
            node.stop()
    assert node.port == held


@pytest.mark.integration
def test_redis_restarted_for_a_fault_keeps_its_port_and_fails_loudly_when_it_is_taken(tmp_path: Path) -> None:
    """Its clients know the port: a restart that moved would leave them on a dead one."""
    stack = Stack(
        kafka=StartedKafka("kafka", 9092, tmp_path / "kafka"),
        redis=NativeRedis("redis", free_port(), tmp_path / "redis"),
        postgres=StartedPostgres("postgres", 5432, tmp_path / "postgres"),
    )
    try:
        stack.start()
        port = stack.redis.port
        stack.stop_redis()
        with listening(port), pytest.raises(InfraError, match="Address already in use"):
            stack.start_redis()
        assert stack.redis.port == port
        assert not stack.redis.pidfile.exists()
        stack.start_redis()
        assert redis.Redis(host="127.0.0.1", port=port, socket_timeout=5).ping()
    finally:
        stack.redis.stop()
