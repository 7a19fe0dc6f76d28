"""A short simulator run on the 3-node cluster (RF 3, min ISR 2), each node behind its fault proxy: the leader of
the training results SIGKILLed, 200 ms of latency on the jobs topic's leader, the results' leader cut off from the
clients and the other nodes, then one training worker cut off from every node. The audit must count every job
once (0 lost, 0 doubled, nothing unexpected, no aborted read, nothing out of order), every fault injected and
undone, and each fault's recovery time in the timeline."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from quartet_shared.settings import KernelSettings
from quartet_tools.harness.cluster import ClusterServers
from simulator.bootstrap import make_simulation
from simulator.scenario_io import parse_scenario

from tests.services.simulator.inputs import simulator_settings
from tests.support.servers import Servers

pytestmark = [pytest.mark.integration, pytest.mark.fault]

CLUSTER_FAULTS = """\
name: cluster-faults
seed: 5
duration_s: 50
rate: {shape: constant, per_second: 2}
arrivals: uniform
mix:
  - action: training
    weight: 1
    pool:
      - file: jobs/training-linear.yaml
faults:
  - {kind: kill_leader, at_s: 6, topic: training.results, down_s: 5}
  - {kind: latency, at_s: 16, duration_s: 6, topic: training.jobs, ms: 200}
  - {kind: partition, at_s: 26, duration_s: 8, isolate: broker, topic: training.results}
  - {kind: partition, at_s: 38, duration_s: 6, isolate: worker, target: training}
workers:
  training: {count: 2}
  restart_delay_s: 1.0
audit:
  settle_timeout_s: 300
  lag_interval_s: 0.5
"""


def test_leader_kill_partitions_and_latency_on_the_cluster_lose_and_double_nothing(
    servers: Servers, settings: KernelSettings, cluster: ClusterServers, unique: str, tmp_path: Path
) -> None:
    on_cluster = settings.model_copy(
        update={"kafka_bootstrap_servers": cluster.bootstrap, "topic_replication_factor": 3}
    )
    cfg = simulator_settings(on_cluster, f"k{unique}.", tmp_path)
    simulation = make_simulation(
        cfg, parse_scenario(CLUSTER_FAULTS), out_dir=tmp_path / "run", servers=servers, cluster=cluster
    )

    report = simulation.run()

    print(report.summary())
    for fault in report.faults:
        print(f"{fault.kind} at {fault.at_s:.1f} s until {fault.end_s or 0:.1f} s: {fault.detail}")
    for recovery in report.recovery.faults:
        print(f"{recovery.kind}: recovery {recovery.recovery_s} s (baseline {recovery.baseline}, peak {recovery.peak})")
    assert report.passed, report.summary()
    an = report.audit.anomalies
    assert (an.lost, an.duplicated, an.unexpected, an.aborted_read, an.out_of_order) == (0, 0, 0, 0, 0)
    assert report.audit.jobs.submitted == 100 and report.audit.jobs.with_result == 100
    assert [f.kind for f in report.faults] == ["kill_leader", "latency", "partition", "partition"]
    assert all(f.ok for f in report.faults), [f.detail for f in report.faults if not f.ok]
    assert "SIGKILLed, live again" in report.faults[0].detail
    assert "cut off from the clients and the other nodes" in report.faults[2].detail
    assert "training worker cut off" in report.faults[3].detail
    assert len(report.recovery.faults) == 4 and report.recovery.unrecovered == 0
    assert all(r.recovery_s is not None and math.isfinite(r.recovery_s) for r in report.recovery.faults)
    # Every fault was undone: no toxic is left on any proxy, every node is live.
    assert cluster.live() == {1, 2, 3}
    proxies = [name for n in (1, 2, 3) for name in (cluster.proxy(n), cluster.side_proxy(n))]
    assert {p: cluster.proxies.toxics(p) for p in proxies} == {p: [] for p in proxies}
