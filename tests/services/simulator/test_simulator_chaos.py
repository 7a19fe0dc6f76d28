"""The reliability proof, shortened: ~500 jobs over both workers with every kind of fault, against real servers.

The simulator runs the `chaos-short` scenario against the session's private Kafka, Redis and PostgreSQL: it
starts two training and two planning workers, SIGKILLs workers three times, stops and restarts the broker,
takes Redis away, freezes the planning workers for a while, publishes 1 % of the jobs twice and 1 % garbage.
The audit must find every accepted job with exactly one result and every piece of garbage dead-lettered.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from quartet_shared.settings import KernelSettings
from simulator.bootstrap import bundled_scenarios, make_simulation
from simulator.scenario_io import load_scenario

from tests.services.simulator.inputs import simulator_settings
from tests.support.servers import Servers

pytestmark = [pytest.mark.integration, pytest.mark.fault]


def test_short_chaos_loses_nothing_and_doubles_nothing(
    servers: Servers, settings: KernelSettings, unique: str, tmp_path: Path
) -> None:
    scenario = load_scenario(bundled_scenarios()["chaos-short"])
    cfg = simulator_settings(settings, f"c{unique}.", tmp_path)
    simulation = make_simulation(cfg, scenario, out_dir=tmp_path / "run", servers=servers)

    report = simulation.run()

    audit = report.audit
    assert report.passed, report.summary()
    assert audit.jobs.submitted >= 500
    assert set(audit.per_kind) == {"training", "planning"}
    assert audit.jobs.accepted == audit.jobs.submitted
    assert audit.jobs.lost == 0 and audit.jobs.doubled == 0 and audit.orphans == 0
    assert audit.jobs.with_result == audit.jobs.submitted
    # The pools' large-result specs (results over the broker's 1 MiB, by claim-check) arrived once each too.
    assert {k: (c.submitted, c.completed, c.lost, c.doubled) for k, c in audit.large.items()} == {
        "training": (2, 2, 0, 0),
        "planning": (1, 1, 0, 0),
    }
    assert "large results (planning): 1 submitted, 1 accepted, 1 completed; lost 0, doubled 0" in report.summary()
    assert audit.jobs.duplicate_publishes == round(0.01 * audit.jobs.submitted)
    assert audit.garbage.sent == audit.garbage.in_dlq == round(0.01 * audit.jobs.submitted)
    kinds = [f.kind for f in report.faults]
    assert kinds.count("kill_worker") == 3
    assert {"broker_restart", "redis_outage", "slow_consumer"} <= set(kinds)
    assert all(f.ok for f in report.faults), [f for f in report.faults if not f.ok]
    assert sum(w.killed for w in report.workers.values()) == 3
    assert sum(w.restarts for w in report.workers.values()) >= 3
    lat = audit.latency["all"]
    assert lat.count == audit.jobs.with_result and lat.p50 is not None and lat.p99 is not None
    saved = json.loads((tmp_path / "run" / "report.json").read_text())
    assert saved["audit"]["passed"] is True
    html = (tmp_path / "run" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "PASSED" in html
