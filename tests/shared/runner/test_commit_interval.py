"""An at-least-once runner's held-back offsets on the real broker: committed by the rebalance that moves their
partitions (from kafka-python's I/O loop) and when the runner stops, so that neither consumes anything again."""

from __future__ import annotations

from collections import Counter

import pytest
from quartet_contracts.topics import TopicSpec
from quartet_shared.consumer import ConsumerRunner, Context, Mode, Subscription
from quartet_shared.settings import KernelSettings
from quartet_shared.topics import ensure_topics
from quartet_tools.harness.effects import Item, publish_items

from tests.support.effects import committed_to_end, wait_until

pytestmark = pytest.mark.integration

COUNT = 300


def test_held_back_offsets_are_committed_when_a_member_joins_and_when_the_runners_stop(
    settings: KernelSettings, unique: str
) -> None:
    topic, group = f"interval.{unique}", f"interval-{unique}"
    ensure_topics(settings, [TopicSpec(topic, "test", partitions=4)])
    ids = publish_items(settings, topic, COUNT)
    deliveries: Counter[str] = Counter()

    def handle(item: Item, ctx: Context) -> None:
        deliveries[ctx.envelope.id] += 1

    # An interval longer than the test: only the rebalance and the stops can commit. No Redis: a record consumed
    # again would reach the handler rather than be skipped as done, and be counted.
    slow = settings.model_copy(update={"consumer_commit_interval_s": 60.0})

    def runner() -> ConsumerRunner:
        return ConsumerRunner(slow, group, [Subscription(topic, handle, Item, retry=False)], mode=Mode.AT_LEAST_ONCE)

    first, second = runner(), runner()
    first.start()
    try:
        wait_until(lambda: len(deliveries) == COUNT, 60, "the first member to handle every item")
        assert not committed_to_end(settings, group, [topic])
        second.start()
        # The join revokes the first member's partitions; it commits what it held back before it rejoins.
        wait_until(lambda: committed_to_end(settings, group, [topic]), 60, "the held-back offsets to be committed")
        wait_until(second.ready, 60, "the second member to join")
        publish_items(settings, topic, COUNT, start=COUNT)
        wait_until(lambda: len(deliveries) == 2 * COUNT, 60, "both members to handle the second round")
    finally:
        second.stop(30)
        first.stop(30)
    assert first.error is None and second.error is None
    # Their stops committed the second round's offsets, and nothing of the first round was delivered again.
    assert committed_to_end(settings, group, [topic])
    assert set(ids) <= set(deliveries)
    assert sum(deliveries.values()) == 2 * COUNT
