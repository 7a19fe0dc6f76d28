"""How long the system took to recover from each fault, read off the consumer-lag series.

For a fault starting at `at_s`: the *baseline* is the highest lag sampled in the `window_s` before it (the last
sample before it when none falls in the window, 0 with none at all); the lag counts as back when it is at most
the baseline plus the tolerance, max(`tolerance_records`, `tolerance_share` × baseline). The fault *disturbed*
the lag when a sample from its start until `rise_window_s` after its end is above that (or unreadable: a broker
down). It has recovered at the first sample after that one which is back again, and its recovery time runs from
the fault's start to that sample. A fault that never disturbed the lag recovered when it ended. A series never
back by the end leaves the recovery time None. With several groups the fault's recovery is the slowest group's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from simulator.domain.stats import Percentiles, percentiles

if TYPE_CHECKING:
    # The report holds the recovery summary, so this module may only name its types.
    from simulator.domain.report import FaultRecord, LagSeries


@dataclass(frozen=True)
class RecoveryRule:
    """The baseline window, the tolerance and how long after a fault's end a rise is still its doing."""

    window_s: float = 5.0
    tolerance_records: int = 2
    tolerance_share: float = 0.1
    rise_window_s: float = 15.0

    def limit(self, baseline: int) -> float:
        """The highest lag that counts as back to `baseline`."""
        return baseline + max(self.tolerance_records, self.tolerance_share * baseline)


class FaultRecovery(BaseModel):
    """One fault's recovery: its baseline lag, whether it disturbed the lag, and when the lag was back."""

    kind: str
    at_s: float
    end_s: float | None = None
    baseline: int = 0
    limit: float = 0.0
    disturbed: bool = False
    peak: int | None = None
    recovered_at_s: float | None = None
    recovery_s: float | None = Field(default=None, description="From the fault's start until the lag was back.")


class RecoverySummary(BaseModel):
    """Recovery times over the faults that recovered, and how many did not."""

    faults: list[FaultRecovery] = Field(default_factory=list)
    times: Percentiles = Field(default_factory=Percentiles)
    unrecovered: int = 0


def _baseline(t_s: Sequence[float], lag: Sequence[int | None], at_s: float, window_s: float) -> int:
    before = [(t, v) for t, v in zip(t_s, lag, strict=True) if t < at_s and v is not None]
    window = [v for t, v in before if t >= at_s - window_s]
    return max(window) if window else (before[-1][1] if before else 0)


def _one_series(fault: FaultRecord, series: LagSeries, rule: RecoveryRule) -> FaultRecovery:
    end = fault.end_s if fault.end_s is not None else fault.at_s
    baseline = _baseline(series.t_s, series.lag, fault.at_s, rule.window_s)
    limit = rule.limit(baseline)
    out = FaultRecovery(kind=fault.kind, at_s=fault.at_s, end_s=fault.end_s, baseline=baseline, limit=limit)
    after = [(t, v) for t, v in zip(series.t_s, series.lag, strict=True) if t >= fault.at_s]
    horizon = end + rule.rise_window_s
    rise = next((i for i, (t, v) in enumerate(after) if t <= horizon and (v is None or v > limit)), None)
    if rise is None:
        out.recovered_at_s, out.recovery_s = end, end - fault.at_s
        return out
    out.disturbed = True
    back = next((t for t, v in after[rise:] if v is not None and v <= limit), None)
    if back is not None:
        out.recovered_at_s, out.recovery_s = back, back - fault.at_s
    until = back if back is not None else float("inf")
    out.peak = max((v for t, v in after[rise:] if v is not None and t <= until), default=None)
    return out


def fault_recovery(fault: FaultRecord, lag: Sequence[LagSeries], rule: RecoveryRule = RecoveryRule()) -> FaultRecovery:
    """The fault's recovery over every group: the slowest group's (None when one group never came back)."""
    per_group = [_one_series(fault, series, rule) for series in lag]
    if not per_group:
        return FaultRecovery(kind=fault.kind, at_s=fault.at_s, end_s=fault.end_s)
    if any(r.recovery_s is None for r in per_group):
        return next(r for r in per_group if r.recovery_s is None)
    return max(per_group, key=lambda r: r.recovery_s or 0.0)


def recovery_summary(
    faults: Sequence[FaultRecord], lag: Sequence[LagSeries], rule: RecoveryRule = RecoveryRule()
) -> RecoverySummary:
    """Each injected fault's recovery, and the percentiles (p50, max) of the recovery times."""
    found = [fault_recovery(f, lag, rule) for f in faults if f.ok]
    times = [r.recovery_s for r in found if r.recovery_s is not None]
    return RecoverySummary(faults=found, times=percentiles(times), unrecovered=len(found) - len(times))


def fault_windows(summary: RecoverySummary) -> list[tuple[float, float]]:
    """Each fault's window in seconds from the run's start: from its start until the lag was back (a fault never
    back lasts to the end of time)."""
    return [(r.at_s, r.recovered_at_s if r.recovered_at_s is not None else math.inf) for r in summary.faults]


def outside_windows(start_s: float, end_s: float, windows: Sequence[tuple[float, float]]) -> bool:
    """True when the span from `start_s` to `end_s` meets none of `windows`."""
    return all(end_s < begin or start_s > end for begin, end in windows)
