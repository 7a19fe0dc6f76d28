"""The report as one self-contained HTML page: plots drawn with matplotlib, embedded as base64 PNG."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from jinja2 import Environment, PackageLoader, select_autoescape
from matplotlib.axes import Axes

from simulator.domain.recovery import FaultRecovery
from simulator.domain.report import FaultRecord, RunReport

FAULT_COLOURS = {
    "kill_worker": "#d62728",
    "broker_restart": "#9467bd",
    "redis_outage": "#ff7f0e",
    "slow_consumer": "#8c564b",
    "pause_worker": "#17becf",
    "kill_broker": "#7b4173",
    "kill_leader": "#e7298a",
    "restart_cluster": "#393b79",
    "partition": "#000000",
    "latency": "#bcbd22",
    "bandwidth": "#2ca02c",
}


def _legend(ax: Axes, **kwargs: Any) -> None:
    """A legend, when anything on the axes has a label (an empty one only draws a warning)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _mark_recoveries(ax: Axes, recoveries: list[FaultRecovery]) -> None:
    """A dotted line where the lag was back after each fault, and an arrow from the fault to it with its time."""
    label: str | None = "lag recovered"
    for r in recoveries:
        if r.recovered_at_s is None or r.recovery_s is None:
            continue
        colour = FAULT_COLOURS.get(r.kind, "#7f7f7f")
        ax.axvline(r.recovered_at_s, color=colour, linestyle=":", linewidth=1.4, label=label)
        # Along the bottom, where the legends (upper right) never are.
        where = ("data", "axes fraction")
        arrow = {"arrowstyle": "<->", "color": colour, "linewidth": 0.9}
        ax.annotate("", (r.at_s, 0.04), (r.recovered_at_s, 0.04), xycoords=where, textcoords=where, arrowprops=arrow)
        middle = (r.at_s + r.recovered_at_s) / 2
        ax.annotate(f"{r.recovery_s:.1f} s", (middle, 0.06), xycoords=where, fontsize=7, color=colour, ha="center")
        label = None


def _mark_faults(ax: Axes, faults: list[FaultRecord], recoveries: list[FaultRecovery]) -> None:
    """Shade each fault's span (a line for instant ones) on a timeline, labelled once per kind, and its recovery."""
    _mark_recoveries(ax, recoveries)
    labelled: set[str] = set()
    for f in faults:
        colour = FAULT_COLOURS.get(f.kind, "#7f7f7f")
        label = f.kind if f.kind not in labelled else None
        labelled.add(f.kind)
        end = f.end_s if f.end_s is not None else f.at_s
        if f.kind == "kill_worker" or end - f.at_s < 0.5:
            ax.axvline(f.at_s, color=colour, linestyle="--", linewidth=1.2, label=label)
        else:
            ax.axvspan(f.at_s, end, color=colour, alpha=0.15, label=label)


def throughput_plot(report: RunReport) -> str:
    """Submitted and completed jobs per second over time, per kind, with the faults."""
    t = report.throughput
    fig, ax = plt.subplots(figsize=(10, 3.6))
    # A step plot draws each bucket from its start; one more point closes the last bucket.
    edges = [*t.t_s, (t.t_s[-1] if t.t_s else 0.0) + t.bucket_s]
    for kind, values in t.submitted.items():
        ax.step(edges, [*values, values[-1]], where="post", linewidth=1, alpha=0.6, label=f"{kind} submitted")
    for kind, values in t.completed.items():
        ax.step(edges, [*values, values[-1]], where="post", linewidth=1.8, label=f"{kind} results")
    _mark_faults(ax, report.faults, report.recovery.faults)
    ax.set_xlabel("seconds since the load started")
    ax.set_ylabel(f"jobs per second ({t.bucket_s:g} s buckets)")
    ax.set_title("Throughput")
    ax.grid(alpha=0.3)
    _legend(ax, fontsize=8, ncol=3, loc="upper right")
    return _png(fig)


def latency_plot(report: RunReport) -> str:
    """p50, p95 and p99 of submit-to-result latency, by the time the result came, with the faults."""
    t = report.throughput
    fig, ax = plt.subplots(figsize=(10, 3.6))
    for name, values in (("p50", t.latency_p50), ("p95", t.latency_p95), ("p99", t.latency_p99)):
        xs = [x for x, v in zip(t.t_s, values, strict=False) if v is not None]
        ys = [v for v in values if v is not None]
        if xs:
            ax.plot(xs, ys, marker=".", linewidth=1.2, label=name)
    _mark_faults(ax, report.faults, report.recovery.faults)
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_xlabel("seconds since the load started (time of the result)")
    ax.set_ylabel("latency, s")
    ax.set_title("Latency percentiles over time (submit → result)")
    ax.grid(alpha=0.3)
    _legend(ax, fontsize=8, ncol=4, loc="upper right")
    return _png(fig)


def percentile_plot(report: RunReport) -> str:
    """p50, p95 and p99 per kind and overall, as grouped bars."""
    lat = {k: v for k, v in report.audit.latency.items() if v.count}
    fig, ax = plt.subplots(figsize=(10, 3.2))
    names = list(lat)
    width = 0.25
    for i, q in enumerate(("p50", "p95", "p99")):
        values = [getattr(lat[n], q) or 0.0 for n in names]
        bars = ax.bar([x + (i - 1) * width for x in range(len(names))], values, width, label=q)
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=7)
    ax.set_xticks(range(len(names)), [f"{n} ({lat[n].count})" for n in names])
    ax.set_ylabel("seconds")
    ax.set_title("Latency percentiles (submit → result)")
    ax.grid(axis="y", alpha=0.3)
    _legend(ax, fontsize=8)
    return _png(fig)


def lag_plot(report: RunReport) -> str:
    """Each worker group's lag over time, with the faults."""
    fig, ax = plt.subplots(figsize=(10, 3.6))
    for series in report.lag:
        xs = [x for x, v in zip(series.t_s, series.lag, strict=False) if v is not None]
        ys = [v for v in series.lag if v is not None]
        ax.plot(xs, ys, linewidth=1.4, label=series.group)
        gaps = [x for x, v in zip(series.t_s, series.lag, strict=False) if v is None]
        if gaps:
            ax.plot(gaps, [0] * len(gaps), "x", color="grey", markersize=4)
    _mark_faults(ax, report.faults, report.recovery.faults)
    ax.set_xlabel("seconds since the load started (x: broker did not answer)")
    ax.set_ylabel("records not yet committed")
    ax.set_title("Consumer lag")
    ax.grid(alpha=0.3)
    _legend(ax, fontsize=8, loc="upper right")
    return _png(fig)


def _environment() -> Environment:
    return Environment(loader=PackageLoader("simulator", "templates"), autoescape=select_autoescape(["html", "j2"]))


def render_html(report: RunReport) -> str:
    """The report page."""
    plots = {
        "throughput": throughput_plot(report),
        "latency": latency_plot(report),
        "percentiles": percentile_plot(report),
        "lag": lag_plot(report),
    }
    template = _environment().get_template("report.html.j2")
    return template.render(r=report, a=report.audit, plots=plots, summary=report.summary())


def write_html(report: RunReport, path: Path) -> Path:
    """Write the report page to `path`."""
    path.write_text(render_html(report), encoding="utf-8")
    return path
