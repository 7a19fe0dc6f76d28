"""The live audit's charts: throughput, latency and lag in fixed time buckets, the newest `buckets` kept.

The console may run for days, so the timeline is a sliding window: each bucket holds counts, a bounded sample
of latencies (reservoir sampling, so a burst of outcomes is represented evenly) and the highest lag seen per
consumer group; a bucket that falls out of the window is dropped whole.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulator.domain.report import FaultRecord

BUCKET_S = 5.0
WINDOW_BUCKETS = 360
LATENCY_SAMPLES = 200
MAX_GROUPS = 8


@dataclass
class Bucket:
    """What happened in [index·bucket_s, (index+1)·bucket_s)."""

    index: int
    accepted: int = 0
    completed: int = 0
    failed: int = 0
    outcomes: int = 0
    latencies: list[float] = field(default_factory=list)
    lag: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class FaultMark:
    """A fault as the charts mark it: its name and when it started and ended (None while it lasts)."""

    name: str
    start: float
    end: float | None = None
    ok: bool = True


@dataclass
class Timeline:
    """Counts, latency samples and lag per bucket over the newest `buckets` buckets."""

    bucket_s: float = BUCKET_S
    buckets: int = WINDOW_BUCKETS
    samples: int = LATENCY_SAMPLES
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    window: deque[Bucket] = field(init=False)

    def __post_init__(self) -> None:
        self.window = deque(maxlen=self.buckets)

    def __len__(self) -> int:
        return len(self.window)

    def _bucket(self, at: float) -> Bucket | None:
        index = math.floor(at / self.bucket_s)
        window = self.window
        if window and index <= window[-1].index:
            offset = window[-1].index - index
            return window[-1 - offset] if offset < len(window) else None
        if window:
            # Buckets with nothing in them still take their place on the time axis (at most a window's worth).
            for gap in range(max(window[-1].index + 1, index - self.buckets + 1), index):
                window.append(Bucket(gap))
        window.append(Bucket(index))
        return window[-1]

    def accepted(self, at: float) -> None:
        """A job request was accepted at `at`."""
        if (bucket := self._bucket(at)) is not None:
            bucket.accepted += 1

    def outcome(self, at: float, completed: bool, latency_s: float) -> None:
        """A job's first outcome at `at`, `latency_s` after its request."""
        bucket = self._bucket(at)
        if bucket is None:
            return
        bucket.completed += completed
        bucket.failed += not completed
        bucket.outcomes += 1
        if len(bucket.latencies) < self.samples:
            bucket.latencies.append(latency_s)
        elif (slot := self.rng.randrange(bucket.outcomes)) < self.samples:
            bucket.latencies[slot] = latency_s

    def lag(self, at: float, lags: Mapping[str, int]) -> None:
        """The consumer groups' lag sampled at `at`; a bucket keeps each group's highest."""
        bucket = self._bucket(at)
        if bucket is None:
            return
        for group, value in sorted(lags.items())[:MAX_GROUPS]:
            bucket.lag[group] = max(value, bucket.lag.get(group, 0))

    def chart(self, now: float, faults: Sequence[FaultMark] = ()) -> dict[str, Any]:
        """The window as plot series (times in epoch milliseconds, rates per second) and the faults to mark."""
        window = list(self.window)
        first = now - self.bucket_s * self.buckets
        # The newest bucket is still filling: its rate is over the part that has passed.
        spans = [self.bucket_s] * len(window)
        if window:
            spans[-1] = min(self.bucket_s, max(1.0, now - window[-1].index * self.bucket_s))
        groups = sorted({g for b in window for g in b.lag})[:MAX_GROUPS]
        return {
            "bucket_s": self.bucket_s,
            "window_s": self.bucket_s * self.buckets,
            "t": [round(b.index * self.bucket_s * 1000) for b in window],
            "accepted": [round(b.accepted / s, 3) for b, s in zip(window, spans, strict=True)],
            "completed": [round(b.completed / s, 3) for b, s in zip(window, spans, strict=True)],
            "failed": [round(b.failed / s, 3) for b, s in zip(window, spans, strict=True)],
            "p50": [_percentile(b.latencies, 50) for b in window],
            "p95": [_percentile(b.latencies, 95) for b in window],
            "lag": {g: [b.lag.get(g) for b in window] for g in groups},
            "faults": [_mark(f, now) for f in faults if (f.end or now) >= first],
        }


def fault_name(kind: str, target: str | None) -> str:
    """A fault's name on the charts, e.g. `kill worker (training)`."""
    name = kind.replace("_", " ")
    return f"{name} ({target})" if target and target != "any" else name


def run_marks(runs: Iterable[tuple[str, float, Sequence[FaultRecord]]], limit: int) -> list[FaultMark]:
    """The newest `limit` faults of runs, each given as (run id, wall-clock start of its faults' times, records)."""
    marks = [
        FaultMark(f"{run_id}: {fault_name(r.kind, r.target)}", t0 + r.at_s, t0 + (r.end_s or r.at_s), r.ok)
        for run_id, t0, records in runs
        if t0 > 0
        for r in records
    ]
    return sorted(marks, key=lambda m: m.start)[-limit:]


def _percentile(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def _mark(fault: FaultMark, now: float) -> dict[str, Any]:
    return {
        "name": fault.name,
        "start": round(fault.start * 1000),
        "end": round((fault.end if fault.end is not None else now) * 1000),
        "ongoing": fault.end is None,
        "ok": fault.ok,
    }
