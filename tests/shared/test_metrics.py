"""The lock-free per-record histogram reads exactly as prometheus_client's own Histogram does."""

from __future__ import annotations

import random
import threading

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from quartet_shared.metrics import RecordTimings

BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5)


def test_record_timings_expose_the_same_samples_as_a_prometheus_histogram() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    timings = RecordTimings("t_seconds", "Per record.", ["group", "topic"], BUCKETS, registry=ours)
    reference = Histogram("t_seconds", "Per record.", ["group", "topic"], buckets=BUCKETS, registry=theirs)
    rng = random.Random(7)
    # Two writers under one label set are summed; bounds themselves land in their own bucket (le is inclusive).
    first, second, other = timings.series("g", "a"), timings.series("g", "a"), timings.series("g", "b")
    values = [rng.choice([0.0, *BUCKETS, 7.0]) for _ in range(200)] + [rng.expovariate(20) for _ in range(800)]
    for i, v in enumerate(values):
        (first if i % 2 else second).observe(v)
        reference.labels("g", "a").observe(v)
        if i % 3 == 0:
            other.observe(v)
            reference.labels("g", "b").observe(v)
    # Sums are added in a different order, so they may differ in the last digits; everything else is equal.
    ours_lines = [line for line in generate_latest(ours).decode().splitlines() if "_sum" not in line]
    theirs_lines = [line for line in generate_latest(theirs).decode().splitlines() if "_sum" not in line]
    theirs_lines = [line for line in theirs_lines if "_created" not in line]
    assert ours_lines == theirs_lines
    ours_sum = ours.get_sample_value("t_seconds_sum", {"group": "g", "topic": "a"})
    assert ours_sum is not None
    assert abs(ours_sum - sum(values)) < 1e-9


def test_a_scrape_while_a_writer_observes_never_sees_counts_go_down() -> None:
    registry = CollectorRegistry()
    series = RecordTimings("w_seconds", "Per record.", ["group"], BUCKETS, registry=registry).series("g")
    done = threading.Event()

    def write() -> None:
        for i in range(200_000):
            series.observe((i % 100) / 1000)
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    last = 0.0
    while not done.is_set():
        count = registry.get_sample_value("w_seconds_count", {"group": "g"}) or 0.0
        assert count >= last
        last = count
    writer.join()
    assert registry.get_sample_value("w_seconds_count", {"group": "g"}) == 200_000
