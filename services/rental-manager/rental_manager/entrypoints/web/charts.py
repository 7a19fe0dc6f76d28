"""Dashboard charts drawn on the server with matplotlib and inlined into the page as SVG (no JavaScript).

Only the object-oriented API is used (a `Figure` per chart, never pyplot's global state), so pages rendered
in parallel threads do not share a figure. Text stays text (`svg.fonttype = none`) so it takes the page's
font, and the root element keeps only its viewBox so the chart scales with its card.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from rental_manager.service.arrears import AgeBucket
from rental_manager.service.schemas import MonthStats

matplotlib.rcParams["svg.fonttype"] = "none"
matplotlib.rcParams["svg.hashsalt"] = "quartet-rental"

BLUE, GREEN, AMBER, RED = "#2563eb", "#10b981", "#f59e0b", "#dc2626"
INK, MUTED, GRID = "#1f2937", "#6b7280", "#e5e7eb"
AGE_COLOURS = (AMBER, "#f97316", RED, "#7f1d1d")

_SIZE = re.compile(r'(<svg[^>]*?)\s(?:width|height)="[^"]*"')


def _figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=(6.4, 2.8), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.set_facecolor("none")
    fig.patch.set_alpha(0)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_color(GRID)
    ax.tick_params(colors=MUTED, labelsize=9, length=0)
    ax.grid(axis="y", color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    return fig, ax


def _svg(fig: Figure, label: str) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", transparent=True)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    while _SIZE.search(text[: text.index(">") + 1]):
        text = _SIZE.sub(r"\1", text, count=1)
    return text.replace("<svg ", f'<svg role="img" aria-label="{label}" class="chart" ', 1)


def _money(value: float, _pos: object = None) -> str:
    if abs(value) >= 1000:
        return f"{value / 1000:,.0f}k" if value % 1000 == 0 else f"{value / 1000:,.1f}k"
    return f"{value:,.0f}"


def _short(month: str) -> str:
    year, number = month.split("-")
    names = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return f"{names[int(number) - 1]}\n{year}" if number == "01" else names[int(number) - 1]


def occupancy_chart(months: Sequence[MonthStats]) -> str:
    """Share of house-days let, month by month, as an area chart."""
    fig, ax = _figure()
    xs = list(range(len(months)))
    rates = [m.occupancy_rate for m in months]
    ax.fill_between(xs, rates, color=BLUE, alpha=0.12, linewidth=0)
    ax.plot(xs, rates, color=BLUE, linewidth=2, marker="o", markersize=3.5)
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xticks(xs, [_short(m.month) for m in months])
    return _svg(fig, "Occupancy per month")


def income_chart(months: Sequence[MonthStats]) -> str:
    """Rent billed against money received, per month, in major units."""
    fig, ax = _figure()
    xs = list(range(len(months)))
    width = 0.38
    billed = [m.billed_cents / 100 for m in months]
    received = [m.income_cents / 100 for m in months]
    ax.bar([x - width / 2 for x in xs], billed, width, color="#bfdbfe", label="Billed")
    ax.bar([x + width / 2 for x in xs], received, width, color=GREEN, label="Received")
    ax.yaxis.set_major_formatter(FuncFormatter(_money))
    ax.set_xticks(xs, [_short(m.month) for m in months])
    ax.legend(frameon=False, fontsize=9, loc="upper left", ncols=2, labelcolor=INK)
    if not any(billed) and not any(received):
        ax.set_ylim(0, 1)
        ax.set_yticks([])
        ax.text(0.5, 0.5, "No rent billed yet", transform=ax.transAxes, ha="center", va="center", color=MUTED)
    return _svg(fig, "Income per month")


def arrears_chart(buckets: Sequence[AgeBucket]) -> str:
    """What is owed on overdue bills, by how long ago they fell due."""
    fig, ax = _figure()
    labels = [b.label for b in buckets]
    owed = [b.cents / 100 for b in buckets]
    bars = ax.barh(labels, owed, color=AGE_COLOURS[: len(buckets)], height=0.6)
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", color=GRID, linewidth=0.8)
    ax.xaxis.set_major_formatter(FuncFormatter(_money))
    ax.tick_params(axis="y", colors=INK)
    for bar, bucket in zip(bars, buckets, strict=True):
        if bucket.bills:
            ax.annotate(
                f" {bucket.bills} bill{'s' if bucket.bills != 1 else ''}",
                (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                va="center",
                fontsize=9,
                color=MUTED,
            )
    if not any(owed):
        ax.set_xlim(0, 1)
        ax.set_xticks([])
        ax.text(0.5, 0.5, "Nothing overdue", transform=ax.transAxes, ha="center", va="center", color=MUTED)
    return _svg(fig, "Overdue amounts by age")
