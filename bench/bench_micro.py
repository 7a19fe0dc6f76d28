"""Each of the kernel's micro-optimizations against the plain, library-backed way, per record, in one run.

A micro-optimization stays only if it buys at least 3 % of a measured figure: here, the per-record cost of the
kernel benchmark's at-least-once consumer (b) or consume→produce runner (e), measured in the same `make bench`
run (bench_kernel runs first and leaves its figures in `bench_kernel.PER_RECORD_US`). The machine is shared, so
the two ways of each candidate are timed side by side in this thread's CPU time: in alternating rounds (the
order swapped every round), each round a fixed number of calls with the collector on, alone and beside a busy
thread (a Kafka client's I/O thread competes for the GIL in a service); the saving is the median over rounds of
plain minus optimized.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import statistics
import sys
import threading
import time
import timeit
from bisect import bisect_left
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from prometheus_client import CollectorRegistry, Histogram
from pydantic import BaseModel
from quartet_contracts.envelope import Envelope, decode

# What bench_kernel measured when the figures of this run are absent (bench/RESULTS.md, 2026-12-03 18:38 UTC).
REFERENCE_PER_RECORD_US = {"b": 42.0, "c": 51.5, "e": 113.0}
THRESHOLD = 0.03
CALLS = 5_000
ROUNDS = 31
BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600)


class Tick(BaseModel):
    """The kernel benchmark's record: a sequence number, a send time and padding to a 1 KiB value."""

    seq: int
    sent_ns: int
    pad: str


@dataclass(frozen=True)
class Candidate:
    """One micro-optimization: the figure whose records run it once each, and both ways of doing it."""

    name: str
    figure: str
    optimized: Callable[[], object]
    plain: Callable[[], object]
    plain_is: str


@dataclass(frozen=True)
class Saving:
    """µs per call that the optimized way saves: the median over rounds and the middle half of the rounds."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, savings: list[float]) -> Saving:
        """The median and quartiles of per-round savings."""
        if len(savings) < 4:
            return cls(statistics.median(savings), min(savings), max(savings))
        low, median, high = statistics.quantiles(savings, n=4)
        return cls(median, low, high)


class _HandRolled:
    """The lock-free histogram series the kernel used before prometheus_client's: a bisect and two additions."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self) -> None:
        self.bounds = tuple(float(b) for b in BUCKETS)
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        """Count one observation."""
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds


def _record() -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """One record as bench_kernel sends it: a 1 KiB Tick, keyed, with a subject."""
    tick = Tick(seq=12345, sent_ns=1_764_800_000_000_000_000, pad="x" * 930)
    envelope = Envelope(type="quartet.bench.Tick.v1", source="/quartet/bench", data=tick.model_dump(mode="json"))
    return dataclasses.replace(envelope, key="job-345", subject="job-345").to_kafka()


def _stamp_isoformat(moment: datetime) -> bytes:
    stamp = moment.isoformat()
    return (stamp[:-6] + "Z" if stamp.endswith("+00:00") else stamp).encode()


def candidates() -> list[Candidate]:
    """The micro-optimizations the kernel has or had on a record's path, each beside its plain version."""
    key, value, headers = _record()
    decoded = decode(key, value, headers)
    fields = {f.name: getattr(decoded, f.name) for f in dataclasses.fields(decoded)}

    def built_with_new() -> Envelope:
        env = object.__new__(Envelope)
        for name, field_value in fields.items():
            object.__setattr__(env, name, field_value)
        return env

    validator = Tick.__pydantic_validator__
    hand_rolled = _HandRolled()
    child = Histogram("bench_seconds", "bench", ["g"], buckets=BUCKETS, registry=CollectorRegistry()).labels("g")
    now = datetime.now(UTC)
    return [
        Candidate("envelope via object.__new__", "b", built_with_new, lambda: Envelope(**fields), "Envelope(**f)"),
        Candidate(
            "pydantic validator called directly",
            "b",
            lambda: validator.validate_json(value),
            lambda: Tick.model_validate_json(value),
            "Model.model_validate_json",
        ),
        Candidate(
            "hand-rolled handler histogram",
            "b",
            lambda: hand_rolled.observe(0.0002),
            lambda: child.observe(0.0002),
            "prometheus_client Histogram",
        ),
        Candidate(
            "ce_time written by orjson",
            "e",
            lambda: orjson.dumps(now, option=orjson.OPT_UTC_Z)[1:-1],
            lambda: _stamp_isoformat(now),
            "datetime.isoformat",
        ),
    ]


def per_call_us(fn: Callable[[], object]) -> float:
    """CALLS calls of `fn` with the collector on, per call, in µs of this thread's CPU time."""
    # CPU time, not wall time: on a shared machine the wall clock also counts the time other processes held
    # the core, which swells both ways of a candidate by the load of the moment and not by their own cost.
    timer = timeit.Timer(fn, "gc.enable()", timer=time.thread_time, globals={"gc": gc})
    return timer.timeit(CALLS) / CALLS * 1e6


def savings(candidate: Candidate) -> Saving:
    """Plain minus optimized per call, over ROUNDS rounds, the order swapped every round."""
    per_round = []
    for i in range(ROUNDS):
        if i % 2:
            optimized, plain = per_call_us(candidate.optimized), per_call_us(candidate.plain)
        else:
            plain, optimized = per_call_us(candidate.plain), per_call_us(candidate.optimized)
        per_round.append(plain - optimized)
    return Saving.of(per_round)


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


def _row(c: Candidate, figure_us: float, alone: Saving, busy: Saving) -> str:
    share = max(alone.median, busy.median) / figure_us
    verdict = "keeps its place" if share >= THRESHOLD else f"replace with {c.plain_is}"
    spread = f"{alone.low:+.2f} to {alone.high:+.2f}"
    return (
        f"| {c.name} | ({c.figure}) {figure_us:.1f} | {alone.median:+.2f} ({spread}) | {busy.median:+.2f} | "
        f"{100 * share:.1f} % | {verdict} |"
    )


def run(quick: bool) -> str:
    """Time every candidate both ways, alone and beside a busy thread, and give the verdicts."""
    global CALLS, ROUNDS
    if quick:
        CALLS, ROUNDS = 500, 3
    per_record, source = figures()
    rows = []
    for c in candidates():
        alone = savings(c)
        with busy_thread():
            busy = savings(c)
        rows.append(_row(c, per_record[c.figure], alone, busy))
    return "\n".join(
        [
            "## Micro-optimizations, each against the plain way (bench/bench_micro.py)",
            "",
            f"CPU µs saved per record by each: plain minus optimized, {CALLS:,} calls of each per round, "
            f"{ROUNDS} rounds alternating which goes first, the median over rounds (middle half in brackets), "
            "alone and beside a thread that wakes every 100 µs for some Python work (a Kafka client's I/O "
            f"thread); the larger median counts, against the per-record cost of the figure it runs in ({source}). "
            f"Threshold: {100 * THRESHOLD:.0f} %.",
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
