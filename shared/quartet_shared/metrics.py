"""Prometheus metrics shared by every service; labels keep services and topics apart."""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

# The library's own bound formatting ("0.0005", "1.0", "+Inf"), so the buckets read as its Histogram's do.
_le: Callable[[float], str] = floatToGoString


class Timings:
    """One series of a `RecordTimings` histogram, written by a single thread: an observation is a bisect and two
    additions."""

    __slots__ = ("_bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        # counts[i]: observations in (bounds[i-1], bounds[i]]; the last one is everything above the top bound.
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        """Count one observation."""
        self.counts[bisect_left(self._bounds, seconds)] += 1
        self.sum += seconds


class RecordTimings(Collector):
    """A labelled histogram for per-record timings, exposed exactly as a prometheus_client Histogram would be.

    prometheus_client's Histogram takes a lock per bucket and per sum on every observation, which is most of a
    microsecond: a fifth of what the consumer runner spends on a record of its own. Here each runner owns its
    series and adds without locks; a scrape sums the series of each label set and makes the buckets cumulative.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = list(labelnames)
        self._bounds = tuple(sorted(float(b) for b in buckets))
        self._series: dict[tuple[str, ...], list[Timings]] = {}
        self._lock = threading.Lock()
        registry.register(self)

    def series(self, *labels: str) -> Timings:
        """A new series for one writer under these label values (writers with the same labels are summed)."""
        timings = Timings(self._bounds)
        with self._lock:
            self._series.setdefault(labels, []).append(timings)
        return timings

    def describe(self) -> Iterator[HistogramMetricFamily]:
        """The metric's name and type, without samples."""
        yield HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)

    def collect(self) -> Iterator[HistogramMetricFamily]:
        """Every label set's cumulative buckets, count and sum."""
        family = HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)
        with self._lock:
            items = [(labels, list(parts)) for labels, parts in self._series.items()]
        bounds = [_le(b) for b in self._bounds] + ["+Inf"]
        for labels, parts in items:
            running, buckets = 0, []
            for i, bound in enumerate(bounds):
                running += sum(p.counts[i] for p in parts)
                buckets.append((bound, float(running)))
            family.add_metric(list(labels), buckets, sum(p.sum for p in parts))
        yield family


CONSUMED = Counter("quartet_messages_consumed_total", "Records consumed.", ["group", "topic"])
PRODUCED = Counter("quartet_messages_produced_total", "Records handed to the producer.", ["topic"])
PRODUCE_ERRORS = Counter(
    "quartet_produce_errors_total", "Records the producer failed to deliver (after its retries).", ["topic"]
)
HANDLER_SECONDS = RecordTimings(
    "quartet_handler_seconds",
    "Time a handler took per record.",
    ["group", "topic"],
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600),
)
RETRIES = Counter("quartet_retries_total", "Handler attempts that failed and were retried.", ["group", "topic"])
DEAD_LETTERS = Counter(
    "quartet_dead_letters_total", "Records sent to a dead-letter topic.", ["group", "topic", "reason"]
)
DUPLICATES = Counter("quartet_duplicates_skipped_total", "Records skipped as already processed.", ["group", "topic"])
CACHE_HITS = Counter("quartet_cache_hits_total", "Cache lookups that found a value.", ["cache"])
CACHE_MISSES = Counter("quartet_cache_misses_total", "Cache lookups that found nothing.", ["cache"])
CACHE_ERRORS = Counter("quartet_cache_errors_total", "Redis calls that failed and were degraded around.", ["op"])
CONSUMER_LAG = Gauge("quartet_consumer_lag", "Records behind the high-water mark.", ["group", "topic", "partition"])
CONSUMER_STALLS = Counter(
    "quartet_consumer_stalls_total",
    "Stuck Kafka clients the runner recovered: a call that never returned (kind=call), a dropped join (kind=join).",
    ["group", "kind"],
)
TRANSACTIONS = Counter("quartet_transactions_total", "Kafka transactions by outcome.", ["group", "outcome"])
