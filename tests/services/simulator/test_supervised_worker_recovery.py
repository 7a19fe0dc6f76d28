"""Two transactional workers run by the simulator's supervisor (`NativeWorkers`), one SIGKILLed under load: the
supervisor starts it again in its slot, with the same instance id and so the same transactional id and static
group member, and the killed worker's partitions are consumed again. A read_committed reader then finds one output
per input (none lost, none doubled, each key in order), on one broker and on the 3-node cluster. Each kill's
recovery (from the kill until a probe written into every partition at that moment has its output) is printed;
`QUARTET_RECOVERY_REPEATS` kills in turn when measuring. The bound asserted is generous (liveness, not timing)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from quartet_tools.harness.processes import worker_environment
from simulator.workers import NativeWorkers, WorkerCommand

from tests.support.cluster_records import assert_one_output_per_input
from tests.support.effects import wait_until
from tests.support.recovery import Feeder, Tail, Topology, probe, repeats, summary

pytestmark = [pytest.mark.integration, pytest.mark.fault]

KIND = "effect"
WORKERS = 2
# The simulator's own default restart delay (a scenario's `workers.restart_delay_s`).
RESTART_DELAY_S = 1.0
# Liveness only: the target is 10 s, measured figures are in bench/RESULTS.md.
RECOVERY_BOUND_S = 120.0


def _supervisor(topology: Topology, source: str, out: str, group: str, logdir: Path) -> NativeWorkers:
    argv = [sys.executable, "-m", "quartet_tools.harness.effect_worker", "--topic", source, "--group", group]
    argv += ["--run", group, "--mode", "transactional", "--out-topic", out, "--max-poll-records", "20"]
    command = WorkerCommand(KIND, argv, worker_environment(topology.settings), instance_variable="QUARTET_INSTANCE_ID")
    return NativeWorkers({KIND: command}, {KIND: WORKERS}, logdir, restart_delay_s=RESTART_DELAY_S)


def test_a_killed_worker_is_restarted_in_its_slot_and_its_partitions_are_consumed_again(
    topology: Topology, unique: str, tmp_path: Path
) -> None:
    settings = topology.settings
    source, out = topology.new_topic(f"in.{unique}"), topology.new_topic(f"out.{unique}")
    partitions = settings.topic_partitions
    supervisor = _supervisor(topology, source, out, f"tx.{unique}", tmp_path / "workers")
    tail, feeder = Tail(settings, out).start(), Feeder(settings, source)
    probes: list[str] = []
    times: list[float] = []
    supervisor.start()
    try:
        feeder.start()
        probes += probe(settings, source, partitions)
        tail.wait_for(probes, 180, "probes before the first kill")
        for n in range(repeats()):
            time.sleep(3)
            killed = time.monotonic()
            which = supervisor.kill(KIND, (n % WORKERS) / WORKERS)
            round_ = probe(settings, source, partitions)
            probes += round_
            times.append(tail.wait_for(round_, RECOVERY_BOUND_S, f"probes after killing {which}") - killed)
            wait_until(lambda: supervisor.alive()[KIND] == WORKERS, 60, "the supervisor to restart the worker")
            # The restarted worker has rejoined and consumes again before the next kill.
            probes += (settled := probe(settings, source, partitions))
            tail.wait_for(settled, RECOVERY_BOUND_S, "probes after the restart")
        feeder.stop()
        tail.wait_for([*feeder.ids, *probes], 300, "inputs")
        stats = supervisor.stats()[KIND]
    finally:
        feeder.stop()
        supervisor.stop()
        tail.close()
    print(summary(f"worker SIGKILL, {topology.name}", times))
    assert (stats.killed, stats.restarts, stats.starts) == (len(times), len(times), WORKERS + len(times))
    assert_one_output_per_input([*feeder.ids, *probes], tail.seen)
