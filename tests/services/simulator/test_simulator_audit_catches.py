"""The audit is not a rubber stamp: a second result for a job and a result for a job never sent, slipped onto
the real results topic during a run, make it fail and name both."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from quartet_contracts.envelope import Envelope
from quartet_contracts.schemas.planning import PlanFailed
from quartet_shared.settings import KernelSettings
from simulator.bootstrap import make_simulation
from simulator.run import Simulation
from simulator.scenario_io import parse_scenario

from tests.services.simulator.inputs import simulator_settings
from tests.support.servers import Servers

pytestmark = pytest.mark.integration

PLANNING_ONLY = """\
name: audit-catches
seed: 3
duration_s: 8
rate: {shape: constant, per_second: 2}
arrivals: uniform
mix:
  - action: planning
    weight: 1
    pool:
      - file: JOB
workers:
  planning: {count: 1}
audit:
  settle_timeout_s: 120
"""


def _forge(simulation: Simulation, settings: KernelSettings, topic: str, phantom: str, done: threading.Event) -> None:
    """Once a real result is out, publish it a second time, and publish a result for a job never sent."""
    while simulation.status.phase != "load" or simulation.status.submitted < 2:
        time.sleep(0.2)
    reader = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, isolation_level="read_committed")
    writer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    try:
        parts = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or [])]
        reader.assign(parts)
        reader.seek_to_beginning(*parts)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            records = [r for batch in reader.poll(timeout_ms=500).values() for r in batch]
            if records:
                first = records[0]
                writer.send(topic, key=first.key, value=first.value, headers=first.headers).get(10)
                break
        orphan = PlanFailed(job_id=phantom, error="a result nobody asked for")
        key, value, headers = Envelope.of(orphan, source="/test", subject=phantom, key=phantom).to_kafka()
        writer.send(topic, key=key, value=value, headers=headers).get(10)
    finally:
        writer.close()
        reader.close()
        done.set()


def test_a_doubled_result_and_an_orphan_fail_the_audit(
    servers: Servers, settings: KernelSettings, unique: str, tmp_path: Path
) -> None:
    scenario = parse_scenario(PLANNING_ONLY.replace("JOB", "jobs/planning-corridor.yaml"))  # a bundled job file
    cfg = simulator_settings(settings, f"a{unique}.", tmp_path)
    simulation = make_simulation(cfg, scenario, out_dir=tmp_path / "run", servers=servers)
    phantom = str(uuid.uuid4())
    done = threading.Event()
    forger = threading.Thread(
        target=_forge, args=(simulation, settings, f"a{unique}.planning.results", phantom, done), daemon=True
    )
    forger.start()

    report = simulation.run()

    assert done.is_set()
    audit = report.audit
    assert not report.passed
    assert audit.jobs.submitted == 16 and audit.jobs.lost == 0
    assert audit.jobs.doubled == 1 and len(audit.doubled_ids) == 1
    assert audit.orphan_ids == [phantom]
    failed = {c.name for c in audit.checks if not c.passed}
    assert failed == {"no job has two results", "no result for a job never sent"}
    assert "FAILED" in report.summary()
