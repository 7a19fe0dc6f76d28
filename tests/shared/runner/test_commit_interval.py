"""An at-least-once runner's held-back offsets on the real broker: committed by the rebalance that moves their
partitions (from kafka-python's I/O loop) and when the runner stops, so that neither consumes anything again."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from quartet_contracts.topics import TopicSpec
from quartet_shared.consumer import ConsumerRunner, Context, Mode, Subscription
from quartet_shared.runner.commit import AtLeastOnce
from quartet_shared.settings import KernelSettings
from quartet_shared.topics import ensure_topics
from quartet_tools.harness.effects import Item, publish_items

from tests.support.effects import committed_to_end, wait_until

pytestmark = pytest.mark.integration

COUNT = 300
# Rounds the lone member may be given to hold a round's offsets back with no rebalance of its own.
ROUNDS = 3


def test_held_back_offsets_are_committed_when_a_member_joins_and_when_the_runners_stop(
    settings: KernelSettings, unique: str
) -> None:
    topic, group = f"interval.{unique}", f"interval-{unique}"
    ensure_topics(settings, [TopicSpec(topic, "test", partitions=4)])
    deliveries: Counter[str] = Counter()

    def handle(item: Item, ctx: Context) -> None:
        deliveries[ctx.envelope.id] += 1

    slow = settings.model_copy(update={"consumer_commit_interval_s": 60.0})

    def runner() -> ConsumerRunner:
        # An interval whose clock stands still never passes: only the rebalances and the stops can commit. No
        # Redis: a record consumed again would reach the handler rather than be skipped as done, and be counted.
        protocol = AtLeastOnce(slow, group, clock=lambda: 0.0)
        subscriptions = [Subscription(topic, handle, Item, retry=False)]
        return ConsumerRunner(slow, group, subscriptions, mode=Mode.AT_LEAST_ONCE, commit=protocol)

    first, second = runner(), runner()
    first.start()
    try:
        published = _held_back_by_the_lone_member(settings, topic, group, first, deliveries)
        revokes = first.revokes
        second.start()
        # The join revokes the first member's partitions; it commits what it held back before it rejoins.
        wait_until(lambda: committed_to_end(settings, group, [topic]), 60, "the held-back offsets to be committed")
        assert first.revokes > revokes, "committed with no revoke of the first member's partitions"
        wait_until(second.ready, 60, "the second member to join")
        publish_items(settings, topic, COUNT, start=published)
        wait_until(_handled(deliveries, published + COUNT), 60, "both members to handle the last round")
    finally:
        second.stop(30)
        first.stop(30)
    assert first.error is None and second.error is None
    # Their stops committed the last round's offsets, and nothing was delivered twice.
    assert committed_to_end(settings, group, [topic])
    assert len(deliveries) == published + COUNT
    assert sum(deliveries.values()) == published + COUNT


def _held_back_by_the_lone_member(
    settings: KernelSettings, topic: str, group: str, member: ConsumerRunner, deliveries: Counter[str]
) -> int:
    """Publish rounds until `member` handled one with no rebalance of its own, and check it held that one back.

    A rebalance of the lone member (a session lost on a loaded host, a join the client dropped) rightly commits
    what it held back, so its round shows nothing either way and another is published. Returns the items
    published.
    """
    published = 0
    for _ in range(ROUNDS):
        revokes = member.revokes
        publish_items(settings, topic, COUNT, start=published)
        published += COUNT
        wait_until(_handled(deliveries, published), 60, "the first member to handle every item")
        committed = committed_to_end(settings, group, [topic])
        if member.revokes == revokes:
            assert not committed, "the lone member committed its held-back offsets with no rebalance"
            return published
    raise AssertionError(f"the lone member was rebalanced during each of {ROUNDS} rounds")


def _handled(deliveries: Counter[str], count: int) -> Callable[[], bool]:
    """Whether `count` distinct items have reached the handler."""
    return lambda: len(deliveries) == count
