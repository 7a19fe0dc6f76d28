"""The console's Kafka side against a real broker: the cluster sample's lag and the live feed's audit."""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata
from quartet_contracts.envelope import Envelope
from quartet_contracts.schemas.training import TrainingRequested
from quartet_contracts.topics import TopicSpec
from quartet_shared.clients import kafka_consumer
from quartet_shared.producer import Producer
from quartet_shared.safe_yaml import safe_load
from quartet_shared.settings import KernelSettings
from quartet_shared.topics import ensure_topics
from simulator.console.cluster import sample_cluster
from simulator.console.feed import LiveFeed, job_topics
from simulator.scenario_io import BUNDLED_DIR
from simulator.settings import SimulatorSettings

from tests.support.effects import wait_until

pytestmark = pytest.mark.integration


def simulator_settings(settings: KernelSettings, prefix: str) -> SimulatorSettings:
    return SimulatorSettings(**settings.model_dump(), topic_prefix=prefix)


def test_the_cluster_sample_finds_a_groups_members_committed_offsets_and_lag(
    settings: KernelSettings, unique: str
) -> None:
    topic, group = f"c{unique}.lag", f"c{unique}.group"
    ensure_topics(settings, [TopicSpec(topic, "console lag test", partitions=1)])
    producer = Producer(settings)
    for i in range(5):
        producer.send_raw(topic, f"k{i}".encode(), b"{}", [])
    producer.flush()
    producer.close()
    consumer = kafka_consumer(settings, group_id=group, client_id=f"member-{unique}")
    try:
        consumer.subscribe([topic])
        wait_until(lambda: bool(consumer.poll(timeout_ms=500) or consumer.assignment()), 30, "an assignment")
        consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(2, "", -1)})

        sample = sample_cluster(simulator_settings(settings, ""))
    finally:
        consumer.close()

    state = next(t for t in sample.topics if t.name == topic)
    mine = next(g for g in sample.groups if g.group == group)
    assert (state.partitions, state.end) == (1, 5)
    assert (mine.topics, mine.committed, mine.lag) == ((topic,), 2, 3)
    assert any(m.startswith(f"member-{unique}@") for m in mine.members)


def test_the_live_feed_counts_a_committed_job_request_as_accepted_and_in_flight(
    settings: KernelSettings, unique: str, tmp_path: Path
) -> None:
    cfg = simulator_settings(settings, f"c{unique}.")
    for topics in job_topics(cfg).values():
        ensure_topics(cfg, topics.specs())
    feed = LiveFeed(cfg)
    feed.tick()
    assert feed.collector is not None and feed.health.notices == []
    spec = TrainingRequested.model_validate(safe_load((BUNDLED_DIR / "jobs" / "training-linear.yaml").read_text()))
    producer = Producer(cfg)
    try:
        producer.send(
            job_topics(cfg)["training"].jobs, Envelope.of(spec, source="test", id=unique, subject=unique, key=unique)
        )
        producer.flush()
    finally:
        producer.close()

    try:
        wait_until(lambda: feed.audit().accepted == 1, 30, "the request to be seen")
        view = feed.audit()
        assert (view.in_flight, view.completed, view.lost, view.doubled) == (1, 0, 0, 0)
        sample = feed.samples[1]
        assert sample is not None and job_topics(cfg)["training"].jobs in {t.name for t in sample.topics}
    finally:
        feed.stop()
