"""The system's capacity on this machine: the simulator's capacity search with 1 and 2 workers per job service.

Each search runs on private native servers with workers the simulator starts itself, loading small training and
planning jobs in turn: slow start, AIMD around the knee, then a hold without lag growing. `--quick` shortens
the intervals and the hold. Usage: ``uv run python bench/bench_capacity.py [--quick]``; prints a Markdown section.
The plots and JSON reports are kept under bench/.work/capacity/.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path

from bench_chaos import PARTITIONS, log, simulator_settings
from quartet_tools.hostservers import private_stack
from simulator.capacity import CapacityReport, CapacityRun, search_capacity

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "capacity"
WORKER_COUNTS = (1, 2)


def params(workers: int, quick: bool) -> CapacityRun:
    """The search's parameters for `workers` workers per job service."""
    if quick:
        return CapacityRun(workers=workers, interval_s=3, hold_s=9, max_rate=50, max_duration_s=120)
    return CapacityRun(workers=workers, interval_s=10, hold_s=60, max_rate=500, max_duration_s=900)


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def markdown(reports: dict[int, CapacityReport], where: Path) -> str:
    """The bench section: per worker count, the sustained rate, whether it held, the p95 at it, and the gain."""
    lines = [
        "## Capacity (the simulator's capacity search)",
        "",
        "Slow start doubles the offered rate of small training and planning jobs while p95 latency and lag stay "
        "flat, AIMD probes the knee, and the best flat rate must hold without lag growing. Private native servers "
        f"({PARTITIONS} partitions per topic).",
        "",
        "| workers per job service | sustained jobs/s | held | p95 latency at it (s) | intervals | why it ended |",
        "|---|---|---|---|---|---|",
    ]
    for workers, r in sorted(reports.items()):
        lines.append(
            f"| {workers} | {_rate(r.sustained_rate)} | {'yes' if r.verdict.held else 'no'} | "
            f"{_rate(r.p95_at_sustained_s)} | {len(r.steps)} × {r.params.interval_s:g} s | {r.verdict.reason} |"
        )
    one, two = reports.get(1), reports.get(2)
    if one is not None and two is not None and one.sustained_rate and two.sustained_rate:
        lines += [
            "",
            f"2 workers per service sustain **{two.sustained_rate / one.sustained_rate:.2f}×** the rate of 1.",
        ]
    plots = ", ".join(f"`{where / f'workers-{w}' / 'capacity.png'}`" for w in sorted(reports))
    lines += ["", f"Plots of offered rate, achieved rate and p95 latency over time: {plots}.", ""]
    return "\n".join(lines)


def run(quick: bool) -> str:
    """Search the capacity with each worker count on private servers; return the Markdown section."""
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    if WORK.exists():
        shutil.rmtree(WORK)
    reports: dict[int, CapacityReport] = {}
    for workers in WORKER_COUNTS:
        started = time.monotonic()
        log(f"capacity with {workers} worker(s) per job service: starting private servers")
        with private_stack(f"quartet-bench-capacity-{workers}-") as stack:
            settings = simulator_settings(stack, WORK)
            reports[workers] = search_capacity(settings, params(workers, quick), WORK / f"workers-{workers}")
        log(f"{reports[workers].summary()} ({time.monotonic() - started:.0f} s)")
    return markdown(reports, WORK)


def main() -> int:
    """Print the section; exit 1 when no worker count held a rate."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short intervals and hold")
    section = run(parser.parse_args().quick)
    print(section)
    return 0 if "| yes |" in section else 1


if __name__ == "__main__":
    raise SystemExit(main())
