"""The catalogue's broker-side topic configuration on one broker and on a replicated cluster."""

from __future__ import annotations

from quartet_contracts.topics import LocalTopicDefaults, TopicSpec


def test_replicated_topics_need_two_in_sync_replicas_and_never_elect_an_unclean_leader() -> None:
    config = TopicSpec("t", "").config(LocalTopicDefaults(topic_replication_factor=3))
    assert config["min.insync.replicas"] == "2"
    assert config["unclean.leader.election.enable"] == "false"


def test_a_single_broker_topic_sets_no_replication_policy() -> None:
    config = TopicSpec("t", "").config(LocalTopicDefaults())
    assert "min.insync.replicas" not in config
    assert "unclean.leader.election.enable" not in config
