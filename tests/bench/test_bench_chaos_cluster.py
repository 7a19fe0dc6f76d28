"""The cluster chaos bench: the one-broker side's scenario (the same minus the cluster faults), the side-by-side
table, and the CPU sampler that says where a side's time went."""

from __future__ import annotations

import os
import subprocess
import sys
from types import ModuleType

import pytest
from simulator.bootstrap import bundled_scenarios
from simulator.scenario_io import load_scenario

from tests.services.simulator.fakes import report
from tests.support.bench import load_bench


def load(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """bench/bench_chaos_cluster.py as a module."""
    return load_bench("bench_chaos_cluster", monkeypatch)


def test_the_bundled_scenario_has_what_the_issue_asks_and_the_one_broker_side_only_the_cluster_free_faults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m = load(monkeypatch)
    scenario = load_scenario(bundled_scenarios()[m.SCENARIO])
    kinds = [f.kind for f in scenario.faults]
    assert kinds.count("kill_leader") >= 3 and kinds.count("kill_worker") >= 3
    assert {"restart_cluster", "partition", "latency", "redis_outage"} <= set(kinds)
    assert {f.isolate for f in scenario.faults if f.kind == "partition"} == {"broker", "worker"}
    assert [f.duration_s for f in scenario.faults if f.kind == "latency"] == [60]
    single = m.without_cluster_faults(scenario)
    assert single.cluster_faults() == []
    assert [f.kind for f in single.faults] == ["duplicate", "kill_worker", "redis_outage", "kill_worker", "kill_worker"]
    assert (single.seed, single.rate, single.mix, single.duration_s) == (
        scenario.seed,
        scenario.rate,
        scenario.mix,
        scenario.duration_s,
    )


def test_the_quick_scenario_keeps_only_the_faults_inside_its_shorter_load(monkeypatch: pytest.MonkeyPatch) -> None:
    m = load(monkeypatch)
    quick = m.shortened(load_scenario(bundled_scenarios()[m.SCENARIO]), 0.2)
    assert quick.duration_s == 144
    assert all(getattr(f, "at_s", 0) < 115.2 for f in quick.faults) and len(quick.faults) >= 3


def test_the_table_puts_both_sides_side_by_side_with_each_sides_faults(monkeypatch: pytest.MonkeyPatch) -> None:
    m = load(monkeypatch)
    cpu = m.CpuShares(wall_s=100.0, cores=2, by_kind={"kafka nodes": 80.0, "simulator": 30.0}, machine_busy_s=190.0)
    sides = [m.Side("cluster", report(), 100.0, cpu, (9.0, 8.0, 7.0)), m.Side("single", report(), 90.0, cpu, (1, 2, 3))]
    section = m.markdown(sides, load_scenario(bundled_scenarios()[m.SCENARIO]))
    assert "| figure | 3 nodes (RF 3, min ISR 2), every fault | 1 broker, minus the cluster faults |" in section
    assert "| lost / duplicated / unexpected | **0** / **0** / **0** | **0** / **0** / **0** |" in section
    assert (
        "| CPU over the side (2 cores) | 95% busy; the run's processes 110 CPU-s (1.10 cores): kafka nodes 80"
        in section
    )
    assert section.count("| 3.0 | 3.1 | kill_worker | SIGKILL training worker 0 |") == 2


def test_the_sampler_counts_a_child_process_cpu_under_its_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    load(monkeypatch)
    from cpu_sampler import CpuSampler, kind_of

    assert kind_of("java -cp x kafka.Kafka server.properties") == "kafka nodes"
    assert kind_of("/venv/bin/python /venv/bin/path-planner worker") == "planning workers"
    assert kind_of("sleep 1") == "other"
    busy = "import time\nend = time.process_time() + 1.0\nwhile time.process_time() < end: pass"
    with CpuSampler(os.getpid(), interval_s=0.1) as sampler:
        subprocess.run([sys.executable, "-c", busy], check=True)
    shares = sampler.shares()
    # The child is sampled while it runs; it ends between samples, so its last interval may be missing.
    assert shares.by_kind.get("other", 0.0) >= 0.3
    assert shares.machine_busy_s > 0 and shares.wall_s >= 1.0
