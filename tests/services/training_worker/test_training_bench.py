"""The benchmark's quick mode runs and reports every comparison with a verdict."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[3] / "bench" / "bench_training.py"


@pytest.mark.slow
def test_quick_benchmark_reports_every_section(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("bench_training_under_test", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Dataclasses resolve their module through sys.modules while the class body executes.
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    report = module.run(quick=True)
    assert report.startswith("## Training worker benchmark (quick)")
    for heading in ("### Ridge, closed form", "### Linear regression by SGD", "### Logistic regression"):
        assert heading in report
    assert report.count("target ≤ 1.2×") == 1
    assert report.count("target ≥ 1.0×") == 1
    assert "relative difference (w, b) |" in report
    for heading in ("### Ridge path, leave-one-out", "### Logistic path, 5-fold", "### MLP on digits"):
        assert heading in report
    assert report.count("target ≤ 1.0×") == 2
    assert report.count("goal ≤ 1.0×") == 1
    # Whatever the timing, our leave-one-out errors and best λ agree with RidgeCV's.
    rows = {line.split("|")[1].strip(): line for line in report.splitlines() if line.startswith("| ")}
    ours = [cell.strip() for cell in rows["ours (one eigendecomposition of XcᵀXc, all λ in two products)"].split("|")]
    theirs = [cell.strip() for cell in rows['sklearn `RidgeCV(gcv_mode="svd")`'].split("|")]
    assert float(ours[-2]) < 1e-8
    assert ours[-3] == theirs[-3]
