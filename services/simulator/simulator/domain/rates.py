"""Rate shapes as functions of time, and arrival times drawn from them.

Arrivals come from the cumulative rate Λ(t) = ∫₀ᵗ λ(u) du: uniform arrivals sit at Λ = 1, 2, 3, …
(exactly ⌊Λ(T)⌋ of them), Poisson arrivals at the partial sums of unit exponentials (an inhomogeneous
Poisson process by time change); both are mapped back through Λ⁻¹.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from simulator.domain.scenario import BurstRate, ConstantRate, RampRate

RateShape = ConstantRate | RampRate | BurstRate
GRID_S = 0.001
MAX_GRID_POINTS = 200_000


def rate_at(rate: RateShape, t: NDArray[np.float64], duration_s: float) -> NDArray[np.float64]:
    """λ(t) in actions per second at each time in `t` (zero outside [0, duration_s))."""
    t = np.asarray(t, dtype=np.float64)
    inside = (t >= 0) & (t < duration_s)
    if isinstance(rate, ConstantRate):
        values = np.full_like(t, rate.per_second)
    elif isinstance(rate, RampRate):
        over = rate.over_s or duration_s
        frac = np.clip(t / over, 0.0, 1.0)
        values = rate.start + (rate.end - rate.start) * frac
    else:
        phase = t - rate.first_at_s
        bursting = (phase >= 0) & (np.mod(phase, rate.every_s) < rate.length_s)
        values = np.where(bursting, rate.burst, rate.base)
    return np.where(inside, values, 0.0)


def cumulative(
    rate: RateShape, duration_s: float, grid_s: float = GRID_S
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(t, Λ(t)) on a regular grid over [0, duration_s] (at most MAX_GRID_POINTS steps), by midpoint sums."""
    steps = min(MAX_GRID_POINTS, max(1, int(np.ceil(duration_s / grid_s))))
    t = np.linspace(0.0, duration_s, steps + 1)
    # Midpoints keep a burst's edges where they are: the rate is piecewise constant between grid points.
    mid = (t[:-1] + t[1:]) / 2
    dt = np.diff(t)
    lam = np.concatenate([[0.0], np.cumsum(rate_at(rate, mid, duration_s) * dt)])
    return t, lam


def expected_count(rate: RateShape, duration_s: float) -> float:
    """Λ(duration): the expected number of arrivals."""
    return float(cumulative(rate, duration_s)[1][-1])


def arrival_times(
    rate: RateShape,
    duration_s: float,
    process: str,
    rng: np.random.Generator,
    limit: int | None = None,
) -> NDArray[np.float64]:
    """Sorted arrival times in [0, duration_s) for the `process` ("uniform" or "poisson")."""
    t, lam = cumulative(rate, duration_s)
    total = lam[-1]
    if process == "uniform":
        marks = np.arange(1, int(np.floor(total + 1e-9)) + 1, dtype=np.float64) - 0.5
    elif process == "poisson":
        # Enough exponentials to pass Λ(T) with overwhelming probability, drawn in one go for reproducibility.
        n = int(total + 10 * np.sqrt(total + 1) + 10)
        marks = np.cumsum(rng.exponential(1.0, size=n))
        marks = marks[marks < total]
    else:
        raise ValueError(f"unknown arrival process {process!r}")
    if limit is not None:
        marks = marks[:limit]
    # Λ is non-decreasing; where the rate is zero it is flat and searchsorted picks the flat stretch's end.
    idx = np.clip(np.searchsorted(lam, marks, side="left"), 1, len(t) - 1)
    lo, hi = lam[idx - 1], lam[idx]
    frac = np.where(hi > lo, (marks - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0)
    times = t[idx - 1] + frac * (t[idx] - t[idx - 1])
    return np.asarray(np.clip(times, 0.0, np.nextafter(duration_s, 0.0)), dtype=np.float64)
