"""The servers come up and the kernel can round-trip an event through the real broker."""

from __future__ import annotations

import pytest
import redis
from quartet_contracts.envelope import Envelope, decode
from quartet_contracts.topics import TopicSpec
from quartet_shared.producer import Producer
from quartet_shared.settings import KernelSettings
from quartet_shared.topics import ensure_topics

from tests.support.effects import records_to_end

pytestmark = pytest.mark.integration


def test_confirmed_send_round_trips_a_cloudevent(settings: KernelSettings, unique: str) -> None:
    topic = f"smoke.{unique}"
    assert ensure_topics(settings, [TopicSpec(topic, "smoke")]) == [topic]
    assert ensure_topics(settings, [TopicSpec(topic, "smoke")]) == []
    producer = Producer(settings)
    env = Envelope(type="quartet.test.Ping.v1", source="/tests", data={"n": 1}, subject="job-1", key="job-1")
    meta = producer.send_confirmed(topic, env, timeout_s=30)
    producer.close()
    assert meta.offset == 0
    # The producer is closed: read what is on the topic, without waiting for more.
    records = records_to_end(settings, [topic])
    assert len(records) == 1
    got = decode(records[0].key, records[0].value, records[0].headers)
    assert (got.id, got.type, got.subject, got.key, dict(got.data)) == (env.id, env.type, "job-1", "job-1", {"n": 1})
    assert dict(records[0].headers)["content-type"] == b"application/json"


def test_redis_is_reachable(settings: KernelSettings) -> None:
    assert redis.Redis.from_url(settings.redis_url).ping()
