"""Network faults between clients and one node of the 3-node cluster, through the Toxiproxy proxy each node
advertises: added latency, and a black hole in front of a partition's leader. Records are counted per id."""

from __future__ import annotations

import statistics
import time

import pytest
from quartet_contracts.envelope import Envelope
from quartet_shared.producer import Producer
from quartet_tools.harness.cluster import ClusterServers

from tests.support.cluster_records import Reader, assert_each_once_in_key_order, confirmed, item, write_again_then_count

pytestmark = [pytest.mark.integration, pytest.mark.fault]

# How long a write may try through the black hole: the toxic holds every byte until removed, so a longer wait
# proves no more.
HELD_S = 10


def _acknowledged_ms(producer: Producer, topic: str, records: list[Envelope]) -> list[float]:
    """Write the records, each confirmed (acks=all) before the next; the milliseconds each took."""
    taken = []
    for record in records:
        started = time.monotonic()
        producer.send_confirmed(topic, record, timeout_s=60)
        taken.append((time.monotonic() - started) * 1000)
    return taken


def test_200ms_on_the_leaders_proxy_delays_each_acknowledgement_and_loses_nothing(
    cluster: ClusterServers, unique: str
) -> None:
    """The leader's answers (and its followers' fetches) cross the proxy: each confirmed write takes at least
    the added 200 ms more, and every record still arrives once, in order."""
    settings = cluster.settings()
    topic = cluster.new_topic(f"cluster.latency.{unique}", partitions=1)
    proxy = cluster.proxy(cluster.leader(topic, 0))
    sent = [item(n) for n in range(60)]
    producer = Producer(settings)
    try:
        before = _acknowledged_ms(producer, topic, sent[:20])
        cluster.proxies.add_toxic(proxy, "latency", "latency", {"latency": 200, "jitter": 0})
        slowed = _acknowledged_ms(producer, topic, sent[20:40])
        cluster.proxies.remove_toxic(proxy, "latency")
        after = _acknowledged_ms(producer, topic, sent[40:])
    finally:
        producer.close()
    print(f"median ack ms: before {statistics.median(before):.0f}, with 200 ms {statistics.median(slowed):.0f}")
    assert min(slowed) >= 200, f"a write was acknowledged past the latency toxic: {sorted(slowed)[:3]}"
    assert statistics.median(after) < statistics.median(slowed) - 150, "the latency outlived its toxic"
    assert_each_once_in_key_order(sent, Reader(settings, topic).read_to_end())


def test_a_black_holed_leader_acknowledges_nothing_then_takes_writes_once_healed(
    cluster: ClusterServers, unique: str
) -> None:
    """With every byte from the leader held back by a `timeout` toxic, no write is acknowledged (the client
    times out, never a false ack); once the toxic is gone writes succeed, and nothing is lost or doubled."""
    settings = cluster.settings()
    topic = cluster.new_topic(f"cluster.blackhole.{unique}", partitions=1)
    proxy = cluster.proxy(cluster.leader(topic, 0))
    before = [item(n) for n in range(12)]
    assert all(confirmed(settings, topic, e, 30) for e in before)
    cluster.proxies.add_toxic(proxy, "blackhole", "timeout", {"timeout": 0})
    held = item(12)
    assert not confirmed(settings, topic, held, HELD_S), "a write was acknowledged through a black hole"
    cluster.proxies.remove_toxic(proxy, "blackhole")
    write_again_then_count(settings, topic, before, [held], first_n=13)
