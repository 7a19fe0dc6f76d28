"""The reliability proof: the simulator's chaos scenario on private native servers, audited end to end.

More than 5,000 jobs over both workers while workers are SIGKILLed, the broker restarts, Redis goes away, the
consumers are slowed, 1 % of the jobs are published twice and 1 % garbage; the audit must show 0 lost,
0 doubled and 100 % of the garbage in dead-letter topics. `--quick` runs the ~500-job `chaos-short`.

Usage: ``uv run python bench/bench_chaos.py [--quick]``; prints a Markdown section. The HTML and JSON reports
are kept under bench/.work/chaos/.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path

from quartet_tools.hostservers import private_stack
from quartet_tools.infra import Stack
from simulator.bootstrap import bundled_scenarios, make_simulation
from simulator.domain.report import RunReport
from simulator.scenario_io import load_scenario
from simulator.settings import SimulatorSettings

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "chaos"
PARTITIONS = 6


def log(message: str) -> None:
    """Progress on stderr, so that stdout stays the Markdown section."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def markdown(report: RunReport, wall_s: float, where: Path) -> str:
    """The bench section: verdict, jobs, faults, lost, doubled, garbage, throughput and latency."""
    a = report.audit
    j = a.jobs
    garbage_pct = 100.0 * a.garbage.in_dlq / a.garbage.accepted if a.garbage.accepted else 100.0
    lines = [
        f"## Reliability under chaos (`{report.scenario}` scenario)",
        "",
        f"Audit: **{'passed' if report.passed else 'FAILED'}**. Seed {report.seed}, plan `{report.plan_digest[:12]}`; "
        f"{report.load_s:.0f} s of load, settled in {report.settle_s:.0f} s"
        + ("" if report.settled else " (**did not settle**)")
        + f"; {wall_s:.0f} s in all on private native servers ({PARTITIONS} partitions per topic).",
        "",
        "| figure | value |",
        "|---|---|",
        f"| jobs submitted | {j.submitted} ({', '.join(f'{k} {c.submitted}' for k, c in a.per_kind.items())}) |",
        f"| jobs accepted (acks=all) | {j.accepted} |",
        f"| **lost** (accepted, no result) | **{j.lost}** |",
        f"| **doubled** (more than one result) | **{j.doubled}** |",
        f"| results for jobs never sent | {a.orphans} |",
        f"| duplicate publishes (same job id) | {j.duplicate_publishes} |",
        f"| garbage published / in dead-letter topics | {a.garbage.sent} / {a.garbage.in_dlq} "
        f"(**{garbage_pct:.0f} %**) |",
        f"| outcomes | {j.completed} completed ({j.cached} from the results cache), {j.failed} failed |",
        f"| throughput | {report.jobs_per_s:.1f} jobs/s (first submit to last result) |",
    ]
    for kind, lat in a.latency.items():
        if lat.count:
            lines.append(
                f"| latency {kind}: p50 / p95 / p99 / max (s) | {_seconds(lat.p50)} / {_seconds(lat.p95)} / "
                f"{_seconds(lat.p99)} / {_seconds(lat.max)} |"
            )
    lines += ["", "Faults, in order (seconds since the load started):", ""]
    lines += ["| at | until | fault | target | result |", "|---|---|---|---|---|"]
    for f in report.faults:
        until = f"{f.end_s:.1f}" if f.end_s is not None else ""
        lines.append(
            f"| {f.at_s:.1f} | {until} | {f.kind} | {f.target or ''} | {f.detail if f.ok else 'FAILED: ' + f.detail} |"
        )
    workers = "; ".join(
        f"{k}: {w.managed} workers, {w.killed} killed, {w.restarts} restarts" for k, w in report.workers.items()
    )
    lines += ["", f"Workers: {workers}.", "", "Audit checks:", ""]
    lines += [f"- {'✓' if c.passed else '✗'} {c.name}: {c.detail}" for c in a.checks]
    lines += ["", f"Full report: `{where / 'report.html'}` (plots of throughput, latency and lag with the faults).", ""]
    return "\n".join(lines)


def simulator_settings(stack: Stack, runs_dir: Path) -> SimulatorSettings:
    """The simulator pointed at a private stack, with no control of its servers beyond what a run is given."""
    return SimulatorSettings(
        kafka_bootstrap_servers=stack.kafka.bootstrap,
        redis_url=stack.redis.url,
        database_url=stack.postgres.url,
        topic_partitions=PARTITIONS,
        runs_dir=runs_dir,
        infra="none",
        service_name="bench-simulator",
    )


def run(quick: bool) -> str:
    """Run the chaos scenario (or chaos-short when quick) on private servers; return the Markdown section."""
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    scenario = load_scenario(bundled_scenarios()["chaos-short" if quick else "chaos"])
    if WORK.exists():
        shutil.rmtree(WORK)
    started = time.monotonic()
    log(f"starting private servers for the {scenario.name} scenario")
    with private_stack("quartet-bench-chaos-") as stack:
        simulation = make_simulation(simulator_settings(stack, WORK), scenario, out_dir=WORK, servers=stack)
        log(f"running {scenario.name}: {scenario.duration_s:g} s of load, then settling")
        report = simulation.run()
    wall = time.monotonic() - started
    log(f"{scenario.name}: {'passed' if report.passed else 'FAILED'} in {wall:.0f} s")
    return markdown(report, wall, WORK)


def main() -> int:
    """Print the section; exit 1 when the audit failed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the ~500-job chaos-short scenario")
    args = parser.parse_args()
    section = run(args.quick)
    print(section)
    return 0 if "Audit: **passed**" in section else 1


if __name__ == "__main__":
    raise SystemExit(main())
