"""The handler-time histogram is prometheus_client's own, fed once per handled record by the runner's dispatch."""

from __future__ import annotations

import threading
from typing import Any

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from prometheus_client import REGISTRY, Histogram
from pydantic import BaseModel
from quartet_contracts.envelope import Envelope
from quartet_shared.consumer import AtLeastOnce, Context, Subscription
from quartet_shared.metrics import HANDLER_SECONDS
from quartet_shared.runner.dispatch import Dispatcher
from quartet_shared.runner.failures import Failures
from quartet_shared.runner.model import BatchState, decode_all
from quartet_shared.settings import KernelSettings

# The bounds dashboards and alerts read; changing them breaks every stored series' buckets.
BUCKETS = ["0.0005", "0.001", "0.005", "0.01", "0.05", "0.1", "0.5", "1.0", "5.0", "30.0", "120.0", "600.0", "+Inf"]


class _Item(BaseModel):
    n: int


def test_handler_seconds_is_the_library_histogram_under_the_dashboards_name() -> None:
    assert isinstance(HANDLER_SECONDS, Histogram)
    family = next(iter(HANDLER_SECONDS.describe()))
    assert (family.name, family.type) == ("quartet_handler_seconds", "histogram")


def _dispatcher(topic: str, group: str) -> Dispatcher:
    def handle(item: _Item, ctx: Context) -> None:
        """Takes the record and emits nothing."""

    settings = KernelSettings()
    subs: dict[str, Subscription[Any]] = {topic: Subscription(topic, handle, model=_Item)}
    # No handler here emits, so the protocol is never opened and its producer never built.
    protocol = AtLeastOnce(settings, group)
    return Dispatcher(settings, group, subs, protocol, Failures(settings, group, protocol, subs.get), threading.Event())


def test_each_handled_record_is_one_observation_under_its_group_and_topic() -> None:
    """Three records through the real dispatch: three observations in the dashboards' buckets, one label set."""
    dispatcher, state = _dispatcher("metrics.in", "g-metrics"), BatchState()
    route, tp = dispatcher.route("metrics.in"), TopicPartition("metrics.in", 0)
    encoded = [Envelope(type="t", source="/x", data={"n": n}).to_kafka() for n in range(3)]
    records = [
        ConsumerRecord("metrics.in", 0, None, n, 0, 0, k, v, h, None, 0, len(v), 0)
        for n, (k, v, h) in enumerate(encoded)
    ]
    for rec, env, _ in decode_all(records):
        assert env is not None
        dispatcher.handle(route, tp, rec, env, state)
    labels = {"group": "g-metrics", "topic": "metrics.in"}
    assert REGISTRY.get_sample_value("quartet_handler_seconds_count", labels) == 3
    family = next(iter(HANDLER_SECONDS.collect()))
    ours = [s for s in family.samples if s.name.endswith("_bucket") and s.labels["group"] == "g-metrics"]
    assert [s.labels["le"] for s in ours] == BUCKETS
    # A handler that does nothing takes well under 5 ms; the counts are cumulative up to +Inf.
    assert [s.value for s in ours][BUCKETS.index("0.005") :] == [3.0] * (len(BUCKETS) - BUCKETS.index("0.005"))
