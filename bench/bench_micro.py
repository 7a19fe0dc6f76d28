"""Each of the kernel's micro-optimizations against the plain, library-backed way, per record, in one run.

A micro-optimization stays only if it buys at least 3 % of a measured figure: here, the per-record cost of the
kernel benchmark's consumer (b), transactional consumer (c) or consume→produce runner (e), measured in the same
`make bench` run (bench_kernel runs first and leaves its figures in `bench_kernel.PER_RECORD_US`). Each variant
is timed in this process, with and without a busy thread beside it (a Kafka client's I/O thread competes for
the GIL in a service), as the minimum over repeats of a fixed number of calls.
"""

from __future__ import annotations

import argparse
import sys
import threading
import timeit
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Histogram
from pydantic import BaseModel

# What bench_kernel measured when the figures of this run are absent (bench/RESULTS.md, 2026-12-03 18:38 UTC).
REFERENCE_PER_RECORD_US = {"b": 42.0, "c": 51.5, "e": 113.0}
THRESHOLD = 0.03
CALLS = 20_000
REPEATS = 7


class Tick(BaseModel):
    """A small message like the kernel benchmark's."""

    seq: int
    sent_at: float
    pad: str


@dataclass(frozen=True)
class Frozen:
    """A frozen dataclass of the envelope's shape."""

    type: str
    source: str
    data: dict[str, object]
    id: str
    subject: str | None
    time: datetime
    key: str | None
    traceparent: str | None


@dataclass(frozen=True)
class Candidate:
    """One micro-optimization: its figure, how often it runs per record there, and both ways of doing it."""

    name: str
    figure: str
    per_record: float
    optimized: Callable[[], object]
    plain: Callable[[], object]
    plain_is: str


def _fields() -> dict[str, object]:
    return {
        "type": "bench.tick.v1",
        "source": "/quartet/bench",
        "data": {"seq": 1},
        "id": "0b7f6f0e-6a59-4a39-9d7e-0a3a9c1b2d4e",
        "subject": None,
        "time": datetime.now(UTC),
        "key": "k",
        "traceparent": None,
    }


def _built_with_new() -> Frozen:
    env = object.__new__(Frozen)
    env.__dict__.update(_FIELDS)
    return env


class _Runner:
    """The runner's output buffer, with and without a pinned bound method."""

    def __init__(self) -> None:
        self._deferred: list[object] = []
        self._defer = self._deferred.append

    def pinned(self) -> None:
        self._defer(1)
        if len(self._deferred) > 1000:
            self._deferred.clear()

    def plain(self) -> None:
        self._deferred.append(1)
        if len(self._deferred) > 1000:
            self._deferred.clear()


def _packed() -> str:
    tagged = f"{'bench.input'}\x00{'0b7f6f0e-6a59-4a39-9d7e-0a3a9c1b2d4e'}"
    topic, _, message_id = tagged.partition("\x00")
    return topic + message_id


def _paired() -> str:
    pair = ("bench.input", "0b7f6f0e-6a59-4a39-9d7e-0a3a9c1b2d4e")
    topic, message_id = pair
    return topic + message_id


_FIELDS = _fields()
_JSON = Tick(seq=1, sent_at=1.0, pad="x" * 1000).model_dump_json().encode()
_RUNNER = _Runner()


def candidates() -> list[Candidate]:
    """The micro-optimizations issue 19 lists, each beside its plain version."""
    from quartet_contracts.envelope import new_id
    from quartet_shared.metrics import RecordTimings

    buckets = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600)
    timings = RecordTimings("bench_seconds", "bench", ["g"], buckets, registry=CollectorRegistry()).series("g")
    child = Histogram("bench_seconds", "bench", ["g"], buckets=buckets, registry=CollectorRegistry()).labels("g")
    validator = Tick.__pydantic_validator__
    return [
        Candidate("pooled uuid4 ids", "e", 1.0, new_id, lambda: str(uuid.uuid4()), "str(uuid.uuid4())"),
        Candidate("envelope via object.__new__", "b", 1.0, _built_with_new, lambda: Frozen(**_FIELDS), "Frozen(**f)"),
        Candidate(
            "pydantic validator called directly",
            "b",
            1.0,
            lambda: validator.validate_json(_JSON),
            lambda: Tick.model_validate_json(_JSON),
            "Model.model_validate_json",
        ),
        Candidate(
            "hand-rolled handler histogram",
            "b",
            1.0,
            lambda: timings.observe(0.0002),
            lambda: child.observe(0.0002),
            "prometheus_client Histogram",
        ),
        Candidate("pinned bound method", "e", 1.0, _RUNNER.pinned, _RUNNER.plain, "self._deferred.append"),
        Candidate("dedup ids packed as topic\\0id", "c", 1.0, _packed, _paired, "a (topic, id) tuple"),
    ]


def per_call_us(fn: Callable[[], object]) -> float:
    """The fastest of REPEATS runs of CALLS calls, per call, in µs."""
    return min(timeit.repeat(fn, number=CALLS, repeat=REPEATS)) / CALLS * 1e6


@contextmanager
def busy_thread() -> Iterator[None]:
    """A thread that wakes every 100 µs for a little Python work, as a Kafka client's I/O thread does under load."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.wait(0.0001):
            sum(range(50))

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def figures() -> tuple[dict[str, float], str]:
    """The kernel benchmark's per-record µs from this run if it ran, else the last recorded ones."""
    kernel = sys.modules.get("bench_kernel")
    measured = getattr(kernel, "PER_RECORD_US", None)
    if measured:
        return dict(measured), "measured by bench_kernel in this run"
    return dict(REFERENCE_PER_RECORD_US), "bench_kernel did not run: its last recorded figures"


def run(quick: bool) -> str:
    """Time every candidate both ways, alone and beside a busy thread, and give the verdicts."""
    global CALLS, REPEATS
    if quick:
        CALLS, REPEATS = 2_000, 3
    per_record, source = figures()
    rows = []
    for c in candidates():
        alone = per_call_us(c.plain) - per_call_us(c.optimized)
        with busy_thread():
            contended = per_call_us(c.plain) - per_call_us(c.optimized)
        saved = max(alone, contended) * c.per_record
        share = saved / per_record[c.figure]
        verdict = "keeps its place" if share >= THRESHOLD else f"replace with {c.plain_is}"
        rows.append(
            f"| {c.name} | ({c.figure}) {per_record[c.figure]:.1f} | {alone:+.2f} | {contended:+.2f} | "
            f"{100 * share:.1f} % | {verdict} |"
        )
    return "\n".join(
        [
            "## Micro-optimizations, each against the plain way (bench/bench_micro.py)",
            "",
            f"µs saved per record by each, timed per call ({CALLS:,} calls, best of {REPEATS}), alone and beside a "
            "thread that wakes every 100 µs for some Python work (a Kafka client's I/O thread); the larger saving "
            "counts, against the per-record cost of the "
            f"figure it runs in ({source}). Threshold: {100 * THRESHOLD:.0f} %.",
            "",
            "| micro-optimization | figure, µs per record | saved alone | saved, busy thread | share | verdict |",
            "|---|---:|---:|---:|---:|---|",
            *rows,
            "",
        ]
    )


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    print(run(parser.parse_args().quick))


if __name__ == "__main__":
    main()
