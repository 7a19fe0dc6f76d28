"""The micro-optimization benchmark weighs each candidate against the kernel's figures of the same run."""

from __future__ import annotations

import sys
from types import ModuleType

import pytest

from tests.support.bench import load_bench


def load(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """bench/bench_micro.py as a module."""
    return load_bench("bench_micro", monkeypatch)


def test_quick_run_gives_every_candidate_a_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    """One row per candidate, each a share of its figure and a keep-or-replace verdict."""
    monkeypatch.delitem(sys.modules, "bench_kernel", raising=False)
    module = load(monkeypatch)
    report = module.run(quick=True)
    rows = [line for line in report.splitlines() if line.startswith("| ") and "micro-optimization" not in line]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == [c.name for c in module.candidates()]
    assert all("keeps its place" in row or "replace with" in row for row in rows)
    assert "its last recorded figures" in report


def test_the_kernel_figures_of_the_same_run_are_used_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    """When bench_kernel ran first in this process, its per-record figures are the yardstick."""
    kernel = ModuleType("bench_kernel")
    kernel.PER_RECORD_US = {"b": 1.0, "c": 2.0, "e": 3.0}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bench_kernel", kernel)
    figures, source = load(monkeypatch).figures()
    assert figures == {"b": 1.0, "c": 2.0, "e": 3.0}
    assert source == "measured by bench_kernel in this run"


def test_a_candidate_is_kept_only_when_its_median_saving_reaches_three_percent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A way that skips 30 µs of a 100 µs record keeps its place; one doing the same work as the plain way does
    not."""
    module = load(monkeypatch)
    work = lambda: sum(range(3000))  # noqa: E731
    monkeypatch.setattr(
        module,
        "candidates",
        lambda: [
            module.Candidate("skips the work", "b", lambda: None, work, "the work"),
            module.Candidate("the same work", "c", work, work, "the work"),
        ],
    )
    # Against figures far apart, so that a loaded machine's noise cannot cross the threshold either way.
    monkeypatch.setattr(module, "figures", lambda: ({"b": 100.0, "c": 1e6}, "given"))
    rows = [line for line in module.run(quick=True).splitlines() if line.startswith("| the ") or "skips" in line]
    assert "keeps its place" in rows[0]
    assert "replace with the work" in rows[1]
