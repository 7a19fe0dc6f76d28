"""The chaos run on the 3-node cluster, and the same scenario minus the cluster faults on one broker, side by side.

The simulator's `chaos-cluster-long` scenario (over 5,000 small training and planning jobs and a few hundred
rental journeys, half their viewings booked by command) first on a private 3-node cluster (RF 3, min ISR 2) behind
its fault proxies, struck by leader kills, a rolling restart, a broker and a worker cut off, 200 ms of latency,
worker SIGKILLs and a Redis outage; then on private single-broker servers with only the faults that need no
cluster (the worker SIGKILLs, the Redis outage, the duplicates). Each side's audit counts lost, duplicated,
unexpected, aborted reads and out-of-order records, each fault's recovery, and the job latency overall and outside
every fault's window. A sampler reads the CPU time of every process the run started (and the machine's), so that
a side that cannot keep up says where the time went.

Usage: ``uv run python bench/bench_chaos_cluster.py [--quick] [--sides cluster,single]``; prints a Markdown
section. The reports are kept under bench/.work/chaos-cluster/.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench_chaos import PARTITIONS, log, simulator_settings
from cpu_sampler import CpuSampler, CpuShares
from quartet_tools.cluster import ProxiedCluster
from quartet_tools.harness.rental import create_database, rental_manager_process
from quartet_tools.hostservers import private_stack
from quartet_tools.infra import Stack
from simulator.bootstrap import bundled_scenarios, make_simulation
from simulator.cluster import ClusterControl
from simulator.domain.report import RunReport
from simulator.domain.scenario import Scenario
from simulator.scenario_io import load_scenario
from simulator.settings import SimulatorSettings

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "chaos-cluster"
SCENARIO = "chaos-cluster-long"
SIDES = ("cluster", "single")


def without_cluster_faults(scenario: Scenario) -> Scenario:
    """The same scenario (same seed, load and other faults) without the faults that need a cluster."""
    drop = {i for i, _ in scenario.cluster_faults()}
    faults = [f for i, f in enumerate(scenario.faults) if i not in drop]
    return scenario.model_copy(update={"faults": faults, "name": f"{scenario.name} minus cluster faults"})


def shortened(scenario: Scenario, factor: float) -> Scenario:
    """The scenario with its load cut to `factor` of its duration and the faults that fall outside it dropped."""
    duration = scenario.duration_s * factor
    faults = [f for f in scenario.faults if getattr(f, "at_s", 0.0) < duration * 0.8]
    return scenario.model_copy(update={"duration_s": duration, "faults": faults})


@contextlib.contextmanager
def redis_and_postgres() -> Iterator[Stack]:
    """Private Redis and PostgreSQL on free ports (the stack's broker is never started: the cluster is Kafka)."""
    workdir = Path(tempfile.mkdtemp(prefix="quartet-bench-chaos-cluster-"))
    # The postgres user must be able to reach its data directory under this one.
    workdir.chmod(0o755)
    stack = Stack.at(workdir, standard_ports=False)
    try:
        stack.redis.start()
        stack.postgres.start()
        yield stack
    finally:
        stack.redis.stop()
        stack.postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def with_rental(settings: SimulatorSettings, stack: Stack, workdir: Path) -> Iterator[SimulatorSettings]:
    """A `rental-manager all` process on its own database and topics; the simulator's settings pointed at it."""
    prefix = f"r{uuid.uuid4().hex[:6]}."
    database = create_database(stack.postgres.url, f"benchrental_{uuid.uuid4().hex[:8]}")
    replicas = {"TOPIC_REPLICATION_FACTOR": str(settings.topic_replication_factor)}
    with rental_manager_process(
        settings.kafka_bootstrap_servers, settings.redis_url, database, workdir, prefix, RELAY_IDLE_S="0.1", **replicas
    ) as url:
        yield settings.model_copy(
            update={"rental_url": url, "rental_topic_prefix": prefix, "rental_database_url": database}
        )


@dataclass(frozen=True)
class Side:
    """One side's report, its wall time and where the CPU went."""

    name: str
    report: RunReport
    wall_s: float
    cpu: CpuShares
    load: tuple[float, float, float]


def _simulate(
    name: str, settings: SimulatorSettings, scenario: Scenario, stack: Stack, cluster: ClusterControl | None
) -> Side:
    load = os.getloadavg()
    started = time.monotonic()
    out = WORK / name
    out.mkdir(parents=True, exist_ok=True)
    with CpuSampler(os.getpid()) as sampler, with_rental(settings, stack, out) as on_rental:
        simulation = make_simulation(on_rental, scenario, out_dir=out, servers=stack, cluster=cluster)
        log(f"{name}: {scenario.name}, {scenario.duration_s:g} s of load, then settling")
        report = simulation.run()
    wall = time.monotonic() - started
    log(f"{name}: {'passed' if report.passed else 'FAILED'} in {wall:.0f} s\n{report.summary()}")
    return Side(name, report, wall, sampler.shares(), load)


def on_cluster(scenario: Scenario) -> Side:
    """The scenario on a private 3-node cluster behind its proxies, with private Redis and PostgreSQL."""
    with redis_and_postgres() as stack:
        cluster = ProxiedCluster.start(WORK / "cluster-nodes")
        try:
            settings = simulator_settings(stack, WORK).model_copy(
                update={"kafka_bootstrap_servers": cluster.bootstrap, "topic_replication_factor": 3}
            )
            return _simulate("cluster", settings, scenario, stack, cluster)
        finally:
            cluster.close()


def on_one_broker(scenario: Scenario) -> Side:
    """The scenario minus its cluster faults on private single-broker servers."""
    with private_stack("quartet-bench-chaos-single-") as stack:
        return _simulate("single", simulator_settings(stack, WORK), without_cluster_faults(scenario), stack, None)


def _s(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _rows(side: Side) -> list[str]:
    """One side's figures, in the order of the table's rows."""
    r, a = side.report, side.report.audit
    an, rec, calm, lat = a.anomalies, r.recovery, r.latency_outside_faults, a.latency.get("all")
    rental = r.rental or {}
    cpu = side.cpu
    kinds = ", ".join(f"{k} {v:.0f}" for k, v in sorted(cpu.by_kind.items(), key=lambda kv: -kv[1]) if v >= 1)
    return [
        f"**{'passed' if r.passed else 'FAILED'}**",
        f"{a.jobs.submitted} ({', '.join(f'{k} {c.submitted}' for k, c in a.per_kind.items())})",
        f"{rental.get('journeys', 0)} ({rental.get('completed', 0)} completed, {rental.get('commands', 0)} commands)",
        f"**{an.lost}** / **{an.duplicated}** / **{an.unexpected}**",
        f"**{an.aborted_read}** (of {an.aborted_written} aborted probes) / **{an.out_of_order}**",
        f"{sum(f.ok for f in r.faults)} of {len(r.faults)}",
        f"{_s(rec.times.p50)} / {_s(rec.times.max)}" + (f" ({rec.unrecovered} never back)" if rec.unrecovered else ""),
        f"{_s(lat.p50 if lat else None, 2)} / {_s(lat.p95 if lat else None, 2)} / {_s(lat.p99 if lat else None, 2)}",
        f"{_s(calm.p50, 2)} / {_s(calm.p95, 2)} / {_s(calm.p99, 2)} ({calm.count} jobs)",
        f"{r.jobs_per_s:.2f} (offered {a.jobs.submitted / r.load_s if r.load_s else 0:.2f})",
        f"{r.load_s:.0f} / {r.settle_s:.0f}" + ("" if r.settled else " (**not settled**)") + f" / {side.wall_s:.0f}",
        f"{side.load[0]:.1f} / {side.load[1]:.1f} / {side.load[2]:.1f}",
        f"{cpu.machine_busy_s / (cpu.wall_s * cpu.cores):.0%} busy; the run's processes {cpu.ours_s:.0f} CPU-s "
        f"({cpu.ours_s / cpu.wall_s:.2f} cores): {kinds}",
    ]


LABELS = (
    "audit",
    "jobs submitted",
    "rental journeys",
    "lost / duplicated / unexpected",
    "aborted reads / out of order",
    "faults injected",
    "recovery per fault: p50 / max (s)",
    "latency p50 / p95 / p99 (s)",
    "latency outside every fault's window, p50 / p95 / p99 (s)",
    "throughput, jobs/s (first submit to last result)",
    "load / settling / wall (s)",
    "load average at the start (1/5/15 min)",
    "CPU over the side (2 cores)",
)


def _faults(side: Side) -> list[str]:
    lines = [
        "",
        f"Faults on the {side.name} side (seconds since the load started; recovery: the workers' lag back to its "
        "level before the fault):",
        "",
        "| at | until | fault | what | recovery (s) |",
        "|---|---|---|---|---|",
    ]
    recoveries = iter(side.report.recovery.faults)
    for f in side.report.faults:
        recovery = next(recoveries).recovery_s if f.ok else None
        detail = f.detail if f.ok else f"FAILED: {f.detail}"
        lines.append(f"| {f.at_s:.1f} | {_s(f.end_s)} | {f.kind} | {detail} | {_s(recovery)} |")
    return lines


def markdown(sides: list[Side], scenario: Scenario) -> str:
    """The bench section: both sides' figures side by side, then each side's faults."""
    names = {"cluster": "3 nodes (RF 3, min ISR 2), every fault", "single": "1 broker, minus the cluster faults"}
    header = " | ".join(names[s.name] for s in sides)
    lines = [
        f"## Chaos on the 3-node cluster against one broker (`{scenario.name}`, bench/bench_chaos_cluster.py)",
        "",
        f"{scenario.description}. Seed {scenario.seed}, {scenario.duration_s:g} s of load at "
        f"{scenario.rate.model_dump().get('per_second', '?')} actions/s, {PARTITIONS} partitions per topic, 2 training "
        "and 2 planning workers managed by the simulator, a rental manager process; private native servers, every "
        f"process at nice {os.nice(0)} on a 2-core host shared with other work.",
        "",
        f"| figure | {header} |",
        "|---|" + "---|" * len(sides),
    ]
    rows = [_rows(s) for s in sides]
    lines += [f"| {label} | " + " | ".join(r[i] for r in rows) + " |" for i, label in enumerate(LABELS)]
    for side in sides:
        lines += _faults(side)
    lines += ["", f"Reports (HTML with the timeline of faults and recoveries): `{WORK}/<side>/report.html`.", ""]
    return "\n".join(lines)


def run(quick: bool, sides: tuple[str, ...] = SIDES) -> str:
    """Run the scenario on each side in turn and return the Markdown section."""
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    scenario = load_scenario(bundled_scenarios()[SCENARIO])
    if quick:
        scenario = shortened(scenario, 0.2)
    if WORK.exists():
        shutil.rmtree(WORK)
    runners = {"cluster": on_cluster, "single": on_one_broker}
    return markdown([runners[name](scenario) for name in sides], scenario)


def main() -> int:
    """Print the section; exit 1 when either side's audit failed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a fifth of the load, with the faults inside it")
    parser.add_argument("--sides", default=",".join(SIDES), help="which sides to run: cluster, single or both")
    args = parser.parse_args()
    section = run(args.quick, tuple(s for s in args.sides.split(",") if s))
    print(section)
    return 1 if "**FAILED**" in section else 0


if __name__ == "__main__":
    raise SystemExit(main())
