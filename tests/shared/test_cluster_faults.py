"""Fault tests on a 3-node cluster (RF 3, min ISR 2): a leader SIGKILLed under load, and a cluster left without
a quorum of replicas. Each counts records per id: none lost, none doubled, per-key order kept."""

from __future__ import annotations

import pytest
from quartet_contracts.envelope import Envelope
from quartet_shared.producer import Producer
from quartet_tools.harness.cluster import ClusterServers

from tests.support.cluster_records import Reader, assert_each_once_in_key_order, confirmed, item, write_again_then_count

pytestmark = [pytest.mark.integration, pytest.mark.fault]

# How long a write may try with two nodes down: no node returns meanwhile, so a longer wait proves no more.
REFUSED_S = 10


def test_leader_sigkilled_mid_stream_loses_doubles_and_reorders_nothing(cluster: ClusterServers, unique: str) -> None:
    """An idempotent acks=all producer confirms every record across a leader's SIGKILL; a read_committed
    reader sees each exactly once, in order within its key."""
    settings = cluster.settings()
    topic = cluster.new_topic(f"cluster.items.{unique}")
    victim = cluster.leader(topic, 0)
    reader = Reader(settings, topic)
    thread = reader.start()
    producer = Producer(settings)
    sent: list[Envelope] = []
    try:
        for n in range(900):
            if n == 300:
                cluster.kill(victim)
            envelope = item(n)
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
    assert_each_once_in_key_order(sent, reader.seen)


def test_two_nodes_down_an_acks_all_write_is_refused_then_accepted_when_one_returns(
    cluster: ClusterServers, unique: str
) -> None:
    """With two of three nodes gone no write is acknowledged (min ISR 2), nothing acknowledged before is lost,
    and writes succeed again once one node is back."""
    settings = cluster.settings()
    topic = cluster.new_topic(f"cluster.quorum.{unique}", partitions=1)
    before = [item(n) for n in range(20)]
    assert all(confirmed(settings, topic, e, 30) for e in before)
    leader = cluster.leader(topic, 0)
    follower = next(n for n in (1, 2, 3) if n != leader)
    cluster.kill(leader)
    cluster.kill(follower)
    refused = item(20)
    assert not confirmed(settings, topic, refused, REFUSED_S), "an acks=all write was acknowledged by one replica"
    cluster.restart(leader)
    write_again_then_count(settings, topic, before, [refused], first_n=21)
