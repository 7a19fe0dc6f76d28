"""Latency percentiles and time series (throughput, lag) in fixed buckets."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from pydantic import BaseModel


class Percentiles(BaseModel):
    """Latency summary in seconds (None when there were no samples)."""

    count: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    mean: float | None = None
    max: float | None = None


def percentiles(values: Sequence[float]) -> Percentiles:
    """p50, p95, p99 (linear interpolation), mean and max of `values`."""
    if not values:
        return Percentiles()
    arr = np.asarray(values, dtype=np.float64)
    p50, p95, p99 = (float(x) for x in np.percentile(arr, [50, 95, 99]))
    return Percentiles(count=len(arr), p50=p50, p95=p95, p99=p99, mean=float(arr.mean()), max=float(arr.max()))


def bucket_size(duration_s: float, target_buckets: int = 120) -> float:
    """A round bucket width giving about `target_buckets` buckets over `duration_s` (at least 1 s)."""
    raw = max(1.0, duration_s / target_buckets)
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600):
        if raw <= step:
            return float(step)
    return float(math.ceil(raw / 600) * 600)


def rate_series(times: Iterable[float], start: float, end: float, bucket_s: float) -> list[float]:
    """Events per second in each bucket [start + k·bucket_s, start + (k+1)·bucket_s) up to `end`."""
    n = max(1, math.ceil((end - start) / bucket_s))
    counts = [0] * n
    for t in times:
        k = int((t - start) // bucket_s)
        if 0 <= k < n:
            counts[k] += 1
    return [c / bucket_s for c in counts]


def bucket_percentiles(
    samples: Iterable[tuple[float, float]], start: float, end: float, bucket_s: float, q: float
) -> list[float | None]:
    """The q-th percentile of the sample values whose time falls in each bucket (None for empty buckets)."""
    n = max(1, math.ceil((end - start) / bucket_s))
    groups: list[list[float]] = [[] for _ in range(n)]
    for t, value in samples:
        k = int((t - start) // bucket_s)
        if 0 <= k < n:
            groups[k].append(value)
    return [float(np.percentile(g, q)) if g else None for g in groups]
