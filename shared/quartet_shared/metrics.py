"""Prometheus metrics shared by every service; labels keep services and topics apart."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONSUMED = Counter("quartet_messages_consumed_total", "Records consumed.", ["group", "topic"])
PRODUCED = Counter("quartet_messages_produced_total", "Records handed to the producer.", ["topic"])
PRODUCE_ERRORS = Counter(
    "quartet_produce_errors_total", "Records the producer failed to deliver (after its retries).", ["topic"]
)
HANDLER_SECONDS = Histogram(
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
CONSUMER_UP = Gauge(
    "quartet_consumer_up",
    "1 while a consumer runner is ready (its producer ready, its group joined), 0 once it stops or loses its group.",
    ["group"],
)
JOB_OUTCOMES = Counter(
    "quartet_job_outcomes_total",
    "Jobs that reached a final status, counted by the job API's process (its status projector, or a queued cancel).",
    ["kind", "outcome"],
)
