"""The one Kafka client factory and the one partition wait."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from kafka import TopicPartition
from pydantic import SecretStr
from quartet_shared.clients import producer_config, wait_for_partitions
from quartet_shared.settings import KernelSettings

ROOT = Path(__file__).resolve().parents[2]
# Only the factory builds clients; the developer tooling (tools/) is not the runtime and may build its own.
ALLOWED = {"clients.py"}


class _Metadata:
    """A consumer whose metadata shows a topic's partitions only after a number of refreshes."""

    def __init__(self, partitions: dict[str, set[int]], refreshes_needed: int) -> None:
        self._partitions = partitions
        self._left = refreshes_needed
        self.refreshes = 0

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self._partitions.get(topic) if self._left <= 0 else None

    def topics(self) -> set[str]:
        self.refreshes += 1
        self._left -= 1
        return set(self._partitions)


def test_no_runtime_module_builds_its_own_kafka_client() -> None:
    pattern = re.compile(r"\b(KafkaConsumer|KafkaProducer|KafkaAdminClient)\(")
    offenders = [
        str(path.relative_to(ROOT))
        for base in (ROOT / "shared", ROOT / "services")
        for path in base.rglob("*.py")
        if ".venv" not in path.parts and path.name not in ALLOWED and pattern.search(path.read_text())
    ]
    assert offenders == []


def test_producer_config_keeps_security_options_and_overrides() -> None:
    settings = KernelSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="u",
        kafka_sasl_password=SecretStr("p"),
    )
    cfg = producer_config(settings, linger_ms=7)
    assert cfg["security_protocol"] == "SASL_SSL"
    assert cfg["sasl_plain_password"] == "p"
    assert cfg["linger_ms"] == 7
    assert cfg["acks"] == "all"


def test_wait_for_partitions_refreshes_until_the_topic_shows() -> None:
    consumer = _Metadata({"a": {1, 0}}, refreshes_needed=2)
    found = wait_for_partitions(consumer, ["a"], timeout_s=5)  # type: ignore[arg-type]
    assert found == [TopicPartition("a", 0), TopicPartition("a", 1)]
    assert consumer.refreshes == 2


def test_wait_for_partitions_names_a_missing_topic() -> None:
    with pytest.raises(LookupError, match="nope"):
        wait_for_partitions(_Metadata({}, 0), ["nope"], timeout_s=0.3)  # type: ignore[arg-type]


def test_wait_for_partitions_gives_up_at_once_when_told_to_stop() -> None:
    stop = threading.Event()
    stop.set()
    consumer = _Metadata({"a": {0}}, refreshes_needed=100)
    with pytest.raises(LookupError):
        wait_for_partitions(consumer, ["a"], timeout_s=30, stop=stop)  # type: ignore[arg-type]
    assert consumer.refreshes == 0
