"""Fault tests on a 3-node cluster (RF 3, min ISR 2): a leader SIGKILLed under load, and a cluster left without
a quorum of replicas. Each counts records per id: none lost, none doubled, per-key order kept."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from quartet_contracts.envelope import Envelope, decode
from quartet_contracts.topics import TopicSpec
from quartet_shared.clients import wait_for_partitions
from quartet_shared.producer import Producer
from quartet_shared.settings import KernelSettings
from quartet_shared.topics import ensure_topics

from tests.support.cluster import ClusterServers
from tests.support.effects import Item

pytestmark = [pytest.mark.integration, pytest.mark.fault]

ITEM = "quartet.test.Item.v1"
KEYS = 12


def _item(n: int) -> Envelope:
    """The n-th record: its key cycles over KEYS keys, its data counts up within its key."""
    return Envelope(type=ITEM, source="test", data=Item(n=n // KEYS).model_dump(), key=f"k{n % KEYS}")


@dataclass
class Reader:
    """A read_committed consumer on every partition of a topic, in a thread, keeping what it sees in order."""

    settings: KernelSettings
    topic: str
    seen: list[Envelope] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    error: list[BaseException] = field(default_factory=list)

    def read_to_end(self) -> list[Envelope]:
        """Read everything committed up to the end offsets now, in this thread."""
        self.done.set()
        self._run()
        assert not self.error, self.error
        return self.seen

    def start(self) -> threading.Thread:
        """Read in a thread until `done` is set and the end offsets are reached."""
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            enable_auto_commit=False,
            isolation_level="read_committed",
            reconnect_backoff_max_ms=1000,
        )
        try:
            partitions = wait_for_partitions(consumer, [self.topic])
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and not (self.done.is_set() and self._at_end(consumer, partitions)):
                for batch in consumer.poll(timeout_ms=500).values():
                    self.seen.extend(decode(r.key, r.value, r.headers) for r in batch)
        except BaseException as exc:  # the test thread reports it
            self.error.append(exc)
        finally:
            consumer.close()

    @staticmethod
    def _at_end(consumer: KafkaConsumer, partitions: list[TopicPartition]) -> bool:
        end = consumer.end_offsets(partitions)
        return all(consumer.position(tp) >= end[tp] for tp in partitions)


def _assert_each_once_in_key_order(sent: list[Envelope], seen: list[Envelope]) -> None:
    """Every sent id seen exactly once, nothing else seen, and within each key the counts in the order sent."""
    counts = Counter(e.id for e in seen)
    sent_ids = {e.id for e in sent}
    lost = sent_ids - set(counts)
    doubled = [i for i, c in counts.items() if c > 1]
    unexpected = set(counts) - sent_ids
    assert not lost, f"{len(lost)} lost, e.g. {sorted(lost)[:3]}"
    assert not doubled, f"{len(doubled)} doubled, e.g. {doubled[:3]}"
    assert not unexpected, f"{len(unexpected)} unexpected"
    per_key: dict[str | None, list[int]] = defaultdict(list)
    for e in seen:
        per_key[e.key].append(int(e.data["n"]))
    for key, ns in per_key.items():
        assert ns == sorted(ns), f"key {key} out of order: {ns[:20]}"


def test_leader_sigkilled_mid_stream_loses_doubles_and_reorders_nothing(cluster: ClusterServers, unique: str) -> None:
    """An idempotent acks=all producer confirms every record across a leader's SIGKILL; a read_committed
    reader sees each exactly once, in order within its key."""
    settings = cluster.settings()
    topic = f"cluster.items.{unique}"
    ensure_topics(settings, [TopicSpec(topic, "")])
    cluster.wait_isr_full([topic])
    victim = cluster.leader(topic, 0)
    reader = Reader(settings, topic)
    thread = reader.start()
    producer = Producer(settings)
    sent: list[Envelope] = []
    try:
        for n in range(900):
            if n == 300:
                cluster.kill(victim)
            envelope = _item(n)
            # Accepted means durable: each send returns only with the in-sync replicas' acknowledgement.
            producer.send_confirmed(topic, envelope, timeout_s=120)
            sent.append(envelope)
    finally:
        producer.close()
        reader.done.set()
        thread.join(timeout=320)
    assert not reader.error, reader.error
    assert victim not in cluster.live(), "the killed leader must be out of the cluster while the rest was written"
    assert cluster.leader(topic, 0) != victim
    _assert_each_once_in_key_order(sent, reader.seen)


def _confirmed(settings: KernelSettings, topic: str, envelope: Envelope, timeout_s: float) -> bool:
    """True if a fresh idempotent acks=all producer gets the write acknowledged within `timeout_s`."""
    timeout_ms = int(timeout_s * 1000)
    # The delivery timeout ends the record's retries with the wait: one refused now is not written behind
    # the test's back once a node returns, and the producer closes without waiting on it.
    producer = Producer(
        settings, max_block_ms=timeout_ms, delivery_timeout_ms=timeout_ms, request_timeout_ms=min(timeout_ms, 5_000)
    )
    try:
        producer.send_confirmed(topic, envelope, timeout_s=timeout_s + 10)
        return True
    except KafkaError:
        return False
    finally:
        producer.close(timeout_s=10)


def test_two_nodes_down_an_acks_all_write_is_refused_then_accepted_when_one_returns(
    cluster: ClusterServers, unique: str
) -> None:
    """With two of three nodes gone no write is acknowledged (min ISR 2), nothing acknowledged before is lost,
    and writes succeed again once one node is back."""
    settings = cluster.settings()
    topic = f"cluster.quorum.{unique}"
    ensure_topics(settings, [TopicSpec(topic, "", partitions=1)])
    cluster.wait_isr_full([topic])
    before = [_item(n) for n in range(20)]
    assert all(_confirmed(settings, topic, e, 30) for e in before)
    leader = cluster.leader(topic, 0)
    follower = next(n for n in (1, 2, 3) if n != leader)
    cluster.kill(leader)
    cluster.kill(follower)
    refused = _item(20)
    assert not _confirmed(settings, topic, refused, 20), "an acks=all write was acknowledged by one replica"
    cluster.restart(leader)
    # Each attempt is a new record: one that timed out may still have been written, and is counted apart.
    attempts = [_item(n) for n in range(21, 29)]
    after = next((e for e in attempts if _confirmed(settings, topic, e, 15)), None)
    assert after is not None, "writes did not succeed again after a node returned"
    counts = Counter(e.id for e in Reader(settings, topic).read_to_end())
    assert all(counts[e.id] == 1 for e in [*before, after]), "an acknowledged write was lost or doubled"
    assert all(counts[e.id] <= 1 for e in [refused, *attempts]), "an unacknowledged write was doubled"
