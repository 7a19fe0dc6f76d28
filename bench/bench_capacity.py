"""The system's capacity on this machine: the simulator's capacity search with 1 and 2 workers per job service.

Each search runs on private native servers with workers the simulator starts itself, loading small training and
planning jobs in turn: slow start, AIMD around the knee, then a hold without lag growing. `--quick` shortens
the intervals and the hold. Usage: ``uv run python bench/bench_capacity.py [--quick]``; prints a Markdown section.
The plots and JSON reports are kept under bench/.work/capacity/.

How long it takes is bounded: each search ends by its `max_duration_s` of wall-clock time plus the interval
under way (15 min for the full bench, 2.5 min for `--quick`), its workers get `READY_TIMEOUT_S` (90 s) to join
and 35 s to stop, and the private servers' start, stop and the report get `SETUP_ALLOWANCE_S` (120 s): at most
39 min in all for the full bench, 13 min for `--quick` (`time_bound_s`). A quick run took 195 s and 205 s per
worker count on the shared 2-core host.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path

from bench_chaos import PARTITIONS, log, simulator_settings
from quartet_tools.hostservers import private_stack
from simulator.capacity import READY_TIMEOUT_S, WORKERS_STOP_S, CapacityReport, CapacityRun, search_capacity

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "capacity"
# Each worker count's plot is kept beside the other benches' figures, so RESULTS.md can show it.
FIGURES = HERE / "figures"
WORKER_COUNTS = (1, 2)
# The private servers' start and stop and the report, per search: about 75 s measured on the loaded 2-core host.
SETUP_ALLOWANCE_S = 120.0


def params(workers: int, quick: bool) -> CapacityRun:
    """The search's parameters for `workers` workers per job service."""
    # The increase step is the search's resolution near the knee: 1 job/s crawled for the whole quick search.
    if quick:
        return CapacityRun(workers=workers, interval_s=3, hold_s=9, increase_step=3, max_rate=100, max_duration_s=150)
    return CapacityRun(workers=workers, interval_s=10, hold_s=60, increase_step=2, max_rate=500, max_duration_s=900)


def time_bound_s(quick: bool) -> float:
    """The longest the bench can take: each worker count's search, its workers' join and stop, and the setup."""
    runs = [params(w, quick) for w in WORKER_COUNTS]
    return sum(r.max_duration_s + r.interval_s + READY_TIMEOUT_S + WORKERS_STOP_S + SETUP_ALLOWANCE_S for r in runs)


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
        "Each search offers a rate per interval, ends by its `max_duration_s` and counts a rate only once it held "
        "for `hold_s`: "
        + "; ".join(
            f"{w} worker(s): {r.params.interval_s:g} s intervals, {r.params.hold_s:g} s hold, "
            f"at most {r.params.max_duration_s:g} s"
            for w, r in sorted(reports.items())
        )
        + ".",
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
    # A rate that did not hold is no capacity: comparing one would compare where each search ran out of time.
    if one is not None and two is not None and one.verdict.held and two.verdict.held:
        lines += [
            "",
            f"2 workers per service sustain **{two.sustained_rate / one.sustained_rate:.2f}×** the rate of 1.",
        ]
    lines += ["", f"Offered rate, achieved rate and p95 latency over time (the reports: `{where}/workers-*/`):", ""]
    lines += [f"![capacity search, {w} worker(s) per service](figures/{figure(w).name})" for w in sorted(reports)]
    lines.append("")
    return "\n".join(lines)


def figure(workers: int) -> Path:
    """Where the search with `workers` workers per service keeps its plot."""
    return FIGURES / f"capacity_workers_{workers}.png"


def run(quick: bool) -> str:
    """Search the capacity with each worker count on private servers; return the Markdown section."""
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    if WORK.exists():
        shutil.rmtree(WORK)
    log(f"the capacity bench takes at most {time_bound_s(quick) / 60:.0f} min")
    reports: dict[int, CapacityReport] = {}
    for workers in WORKER_COUNTS:
        started = time.monotonic()
        log(f"capacity with {workers} worker(s) per job service: starting private servers")
        with private_stack(f"quartet-bench-capacity-{workers}-") as stack:
            settings = simulator_settings(stack, WORK)
            reports[workers] = search_capacity(settings, params(workers, quick), WORK / f"workers-{workers}")
        shutil.copyfile(WORK / f"workers-{workers}" / "capacity.png", figure(workers))
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
