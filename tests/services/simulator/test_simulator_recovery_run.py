"""A short run with one training worker SIGKILLed, on native servers: the report names every anomaly under
Jepsen's names, all zero, with aborted probes on the results topic that the audit's read_committed reader never
read, and the kill's recovery time (consumer lag back to its level before it) is measured and finite."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from quartet_contracts.envelope import decode
from quartet_shared.settings import KernelSettings
from simulator.bootstrap import make_simulation
from simulator.scenario_io import parse_scenario

from tests.services.simulator.inputs import simulator_settings
from tests.support.servers import Servers

pytestmark = [pytest.mark.integration, pytest.mark.fault]

ONE_KILL = """\
name: one-kill
seed: 11
duration_s: 24
rate: {shape: constant, per_second: 3}
arrivals: uniform
mix:
  - action: training
    weight: 1
    pool:
      - file: jobs/training-linear.yaml
faults:
  - {kind: kill_worker, at_s: 8, target: training}
workers:
  training: {count: 2}
  restart_delay_s: 1.0
audit:
  settle_timeout_s: 180
  lag_interval_s: 0.5
  aborted_probe_interval_s: 1.0
"""


def _probes_on_the_log(settings: KernelSettings, topic: str) -> set[str]:
    """The probe ids a read_uncommitted reader finds on `topic`: the aborted records are really there."""
    reader = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, isolation_level="read_uncommitted")
    found: set[str] = set()
    try:
        parts = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or [])]
        reader.assign(parts)
        reader.seek_to_beginning(*parts)
        ends = reader.end_offsets(parts)
        for _ in range(200):
            if all(reader.position(tp) >= ends[tp] for tp in parts):
                break
            for records in reader.poll(timeout_ms=500).values():
                subjects = {decode(r.key, r.value, r.headers).subject or "" for r in records}
                found |= {s for s in subjects if s.startswith("aborted-probe-")}
    finally:
        reader.close()
    return found


def test_a_killed_worker_loses_and_doubles_nothing_and_its_recovery_time_is_measured(
    servers: Servers, settings: KernelSettings, unique: str, tmp_path: Path
) -> None:
    scenario = parse_scenario(ONE_KILL)  # its job file is a bundled one
    cfg = simulator_settings(settings, f"r{unique}.", tmp_path)
    simulation = make_simulation(cfg, scenario, out_dir=tmp_path / "run", servers=servers)

    report = simulation.run()

    print(report.summary())
    assert report.passed, report.summary()
    an = report.audit.anomalies
    assert (an.lost, an.duplicated, an.unexpected, an.aborted_read, an.out_of_order) == (0, 0, 0, 0, 0)
    assert report.audit.jobs.submitted == 72 and report.audit.jobs.with_result == 72
    on_log = _probes_on_the_log(settings, f"r{unique}.training.results")
    assert on_log and an.aborted_written >= len(on_log), "no aborted probe reached the results topic"
    assert [f.kind for f in report.faults] == ["kill_worker"] and report.workers["training"].killed == 1
    (kill,) = report.recovery.faults
    assert kill.recovery_s is not None and math.isfinite(kill.recovery_s) and kill.recovery_s >= 0
    assert report.recovery.unrecovered == 0 and report.recovery.times.max == kill.recovery_s
    saved = json.loads((tmp_path / "run" / "report.json").read_text())
    assert set(saved["audit"]["anomalies"]) >= {"lost", "duplicated", "unexpected", "aborted_read", "out_of_order"}
    assert saved["recovery"]["faults"][0]["recovery_s"] == kill.recovery_s
    html = (tmp_path / "run" / "report.html").read_text()
    assert "<h3>Recovery</h3>" in html and "aborted reads" in html
