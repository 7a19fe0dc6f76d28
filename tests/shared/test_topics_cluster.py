"""Topics the kernel creates on a 3-node cluster are replicated on all three, need two in sync, elect cleanly."""

from __future__ import annotations

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from quartet_contracts.topics import TopicSpec
from quartet_shared.topics import ensure_topics
from quartet_tools.harness.cluster import ClusterServers

pytestmark = [pytest.mark.integration]


def test_ensure_topics_on_the_cluster_makes_rf3_min_isr2_without_unclean_election(
    cluster: ClusterServers, unique: str
) -> None:
    topic = f"cluster.topics.{unique}"
    assert ensure_topics(cluster.settings(), [TopicSpec(topic, "")]) == [topic]
    cluster.wait_isr_full([topic])
    assert all(len(p.replicas) == 3 for p in cluster.partitions([topic]))
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        admin.close()
    (by_name,) = described.values()
    config = {key: data["value"] for key, data in by_name[topic].items()}
    assert config["min.insync.replicas"] == "2"
    assert config["unclean.leader.election.enable"] == "false"
