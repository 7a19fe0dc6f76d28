"""What `quartet submit --wait` prints once a job ends: a summary a person reads, not the result's raw fields.

A training result shows its metrics beside the λ = 0 reference's and, for a sweep, the chosen λ on its validation
curve; a planning result shows its cost and feasibility and each compared optimizer's. The result is read through
the contract's own models (`TrainingCompleted`, `PlanCompleted`); one that does not match them (a service newer
than this CLI) falls back to its scalar fields, and `--json` always prints the whole result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from quartet_contracts.schemas.planning import ComparedRun, PlanCompleted
from quartet_contracts.schemas.training import SweepCurve, TrainingCompleted
from rich.table import Table

# A sweep's curve has at most MAX_LAMBDAS points; beyond this many the summary shows the best λ's neighbourhood.
SWEEP_ROWS = 11


def number(value: float | None, unit: str = "") -> str:
    """A float in at most six significant digits (`-` for none)."""
    return "-" if value is None else f"{value:.6g}{unit}"


def yes_no(value: bool) -> str:
    """`yes` or `no`."""
    return "yes" if value else "no"


def _fields(title: str, rows: Sequence[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in rows:
        table.add_row(name, value)
    return table


def _metric_names(metrics: Mapping[str, float]) -> list[str]:
    """`train_r2`, `val_r2`, ... → `r2`, in the order the service gave them."""
    names: list[str] = []
    for key in metrics:
        name = key.split("_", 1)[1] if key.startswith(("train_", "val_")) else key
        if name not in names:
            names.append(name)
    return names


def _metrics_table(done: TrainingCompleted) -> Table:
    table = Table(title="metrics", title_justify="left")
    table.add_column("metric", style="bold")
    table.add_column(f"train (λ = {done.lam:g})", justify="right")
    table.add_column(f"validation (λ = {done.lam:g})", justify="right")
    table.add_column("train (λ = 0)", justify="right")
    table.add_column("validation (λ = 0)", justify="right")
    ours, ref = done.metrics, done.reference_metrics
    for name in _metric_names({**ours, **ref}):
        table.add_row(
            name,
            number(ours.get(f"train_{name}", ours.get(name))),
            number(ours.get(f"val_{name}")),
            number(ref.get(f"train_{name}", ref.get(name))),
            number(ref.get(f"val_{name}")),
        )
    return table


def _sweep_table(sweep: SweepCurve) -> Table:
    """The validation curve around the chosen λ (all of it when short), the chosen row marked."""
    points = sorted(sweep.points, key=lambda p: p.lam)
    best = next((i for i, p in enumerate(points) if p.lam == sweep.best_lam), 0)
    start = max(0, min(best - SWEEP_ROWS // 2, len(points) - SWEEP_ROWS))
    shown = points[start : start + SWEEP_ROWS]
    caption = None if len(shown) == len(points) else f"{len(shown)} of {len(points)} λ around the best; --json has all"
    table = Table(title="λ sweep (validation curve)", caption=caption, title_justify="left")
    for column in ("λ", "train loss", "validation loss", "± std", ""):
        table.add_column(column, justify="right")
    for point in shown:
        mark = "best" if point.lam == sweep.best_lam else ""
        style = "bold green" if mark else None
        table.add_row(
            f"{point.lam:g}",
            number(point.train_loss),
            number(point.val_loss),
            number(point.val_loss_std),
            mark,
            style=style,
        )
    return table


def training_tables(done: TrainingCompleted) -> list[Table]:
    """The summary of a completed training job: what was fit, its metrics against λ = 0, and the sweep."""
    rows: list[tuple[str, str]] = [("model", done.model)]
    if done.hidden_layers:
        rows.append(("hidden layers", " × ".join(str(len(layer.bias)) for layer in done.hidden_layers)))
    rows.append(("features", str(len(done.feature_names))))
    if done.class_names:
        rows.append(("classes", ", ".join(done.class_names[:10]) + (" ..." if len(done.class_names) > 10 else "")))
    if done.sweep is not None:
        folds = f", {done.sweep.folds} folds" if done.sweep.validation != "holdout" else ""
        rows.append(("best λ", f"{done.sweep.best_lam:g} (by {done.sweep.validation}{folds})"))
    else:
        rows.append(("λ", f"{done.lam:g}"))
    rows.append(("epochs", f"{done.epochs_run}{' (stopped early)' if done.stopped_early else ''}"))
    cosine = done.similarity.cosine
    rows.append(("weights vs λ = 0", f"cosine {number(cosine)}, L2 distance {number(done.similarity.l2)}"))
    rows.append(("cached", yes_no(done.cached)))
    tables = [_fields("training result", rows), _metrics_table(done)]
    if done.sweep is not None:
        tables.append(_sweep_table(done.sweep))
    return tables


def planning_tables(done: PlanCompleted) -> list[Table]:
    """The summary of a completed planning job: its cost and feasibility, and each compared optimizer's."""
    rows = [
        ("optimizer", f"{done.optimizer} ({done.encoding})"),
        ("best cost", number(done.best_cost)),
        ("feasible", yes_no(done.feasible)),
        ("min clearance", number(done.min_clearance, " m")),
        ("evaluations", f"{done.evaluations:,}"),
        ("runtime", f"{done.runtime_s:.2f} s"),
        ("waypoints", str(len(done.waypoints))),
        (
            "cost terms",
            ", ".join(
                f"{name} {number(getattr(done.cost, name))}" for name in ("length", "threat", "altitude", "smoothness")
            ),
        ),
        ("cached", yes_no(done.cached)),
    ]
    rows.extend(("problem", problem) for problem in done.problems)
    tables = [_fields("planning result", rows)]
    if done.comparison:
        table = Table(title="compared optimizers", title_justify="left")
        for column in ("optimizer", "best cost", "feasible", "min clearance", "evaluations", "runtime"):
            table.add_column(column, justify="left" if column == "optimizer" else "right")
        runs: list[PlanCompleted | ComparedRun] = [done, *done.comparison]
        for run in runs:
            table.add_row(
                run.optimizer,
                number(run.best_cost),
                yes_no(run.feasible),
                number(run.min_clearance, " m"),
                f"{run.evaluations:,}",
                f"{run.runtime_s:.2f} s",
                style="bold" if run is done else None,
            )
        tables.append(table)
    return tables


def scalar_rows(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The result's top-level scalars and its mappings' scalars: what a result this CLI cannot read still says."""
    rows: list[tuple[str, str]] = []
    for key, value in result.items():
        items = value.items() if isinstance(value, Mapping) else [("", value)]
        for sub, v in items:
            if v is None or isinstance(v, str | int | float | bool):
                name = f"{key}.{sub}" if sub else key
                rows.append((name, number(v) if isinstance(v, float) else str(v)))
    return rows


def result_tables(kind: str, result: Mapping[str, Any]) -> list[Table]:
    """The summary of a job's result, by its kind (`training` or `planning`)."""
    try:
        if kind == "training":
            return training_tables(TrainingCompleted.model_validate(result))
        return planning_tables(PlanCompleted.model_validate(result))
    except ValidationError as exc:
        table = _fields(f"{kind} result", scalar_rows(result))
        table.caption = f"not a result this CLI knows ({exc.error_count()} difference(s)); --json shows it whole"
        return [table]


def failure_message(kind: str, job: Mapping[str, Any]) -> str:
    """How a job that did not succeed ended, with its problem's title and detail when it has one."""
    head = f"{kind} job {job.get('id')} {job.get('status')}"
    problem = job.get("problem")
    if not isinstance(problem, Mapping):
        return head
    title, detail = str(problem.get("title") or "").strip(), str(problem.get("detail") or "").strip()
    text = " — ".join(part for part in (title, detail) if part)
    return f"{head}: {text}" if text else head


__all__ = [
    "failure_message",
    "number",
    "planning_tables",
    "result_tables",
    "scalar_rows",
    "training_tables",
    "yes_no",
]
