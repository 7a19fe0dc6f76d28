"""The transactional copy bench's audit (lost, duplicated, unexpected, out of order within a partition) and its
recovery time per kill, on made-up outputs."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.support.bench import load_bench


def load(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """bench/bench_txn_copy.py as a module."""
    return load_bench("bench_txn_copy", monkeypatch)


def test_the_audit_counts_each_anomaly_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    m = load(monkeypatch)
    inputs = ["a", "b", "c", "d", "e"]
    seen = [
        m.Seen(1.0, 0, "a", 0),
        m.Seen(1.1, 0, "c", 2),
        m.Seen(1.2, 0, "b", 1),  # behind c in its partition
        m.Seen(1.3, 1, "d", 3),
        m.Seen(1.4, 1, "d", 3),  # a second output of d: a duplicate, not out of order
        m.Seen(1.5, 1, "x", 9),  # no such input
    ]
    a = m.audit(inputs, seen)
    assert (a.inputs, a.outputs, a.lost, a.duplicated, a.unexpected, a.out_of_order) == (5, 6, 1, 1, 1, 1)


def test_a_clean_copy_has_no_anomaly(monkeypatch: pytest.MonkeyPatch) -> None:
    m = load(monkeypatch)
    seen = [m.Seen(float(n), n % 2, f"i{n}", n) for n in range(10)]
    a = m.audit([f"i{n}" for n in range(10)], seen)
    assert (a.lost, a.duplicated, a.unexpected, a.out_of_order) == (0, 0, 0, 0)


def test_recovery_runs_until_the_output_rate_is_back_to_half_its_rate_before_the_kill(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m = load(monkeypatch)
    # 10 outputs/s until the kill at 20 s, none for 12 s, then 2/s from 32 s to 40 s, 10/s again from 40 s.
    times = [i / 10 for i in range(200)] + [32 + i / 2 for i in range(16)] + [40 + i / 10 for i in range(100)]
    seen = [m.Seen(t, 0, str(i), i) for i, t in enumerate(times)]
    # Over the 5 s before 42.2 s: 2/s from 37.2 s to 40 s (6) and 10/s since (22 + 1): 29, just past 25.
    assert m.recovery_s(seen, 20.0) == pytest.approx(22.0, abs=0.3)
    assert m.recovery_s(seen[:200], 20.0) is None  # never back
    assert m.recovery_s(seen, 0.0) is None  # nothing before it to come back to
