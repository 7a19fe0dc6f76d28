"""PNG plots of a training outcome: loss curves, weight norm, the fitted curve with and without decay, λ sweep.

Figures are built with matplotlib's object API on the Agg canvas, never through pyplot, so rendering
holds no global state and is safe from any thread.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from training_worker.domain.data import FloatArray
from training_worker.domain.runner import SweepResult, TrainingOutcome
from training_worker.domain.training import FittedModel, History

TRAIN_COLOUR = "#1f77b4"
VAL_COLOUR = "#d62728"
REFERENCE_COLOUR = "#7f7f7f"
DPI = 110


def render_plots(outcome: TrainingOutcome) -> dict[str, bytes]:
    """Every plot that applies to outcome, as name -> PNG bytes."""
    plots = {
        "loss": loss_curve_png(outcome.result.history, title=f"{outcome.label} (λ = {outcome.lam:g}): loss"),
        "weight_norm": weight_norm_png(outcome),
    }
    if outcome.model.hidden:
        plots["layer_norms"] = layer_norms_png(outcome)
        plots["weight_histograms"] = weight_histograms_png(outcome)
    if outcome.reference is not outcome.result and len(outcome.result.history.train_loss) > 1:
        plots["loss_comparison"] = loss_comparison_png(outcome)
    if outcome.model.kind == "linear" and outcome.train.n_features == 1:
        plots["fit"] = fit_comparison_png(outcome)
    if outcome.model.kind != "linear" and outcome.train.n_features == 2:
        plots["decision_boundary"] = decision_boundary_png(outcome)
    if outcome.sweep is not None:
        plots["validation_curve"] = validation_curve_png(outcome.sweep, metric=_loss_name(outcome))
    return plots


def loss_curve_png(history: History, *, title: str = "Loss", metric: str = "loss") -> bytes:
    """Training and validation loss per epoch."""
    fig, ax = _figure()
    _draw_losses(ax, history, [*history.train_loss, *history.val_loss], title)
    ax.set_ylabel(metric)
    return _png(fig)


def _draw_losses(ax: Axes, history: History, scale: list[float], title: str) -> None:
    """Training and validation loss per epoch on ax, its y-axis chosen for all of scale."""
    epochs = np.arange(1, len(history.train_loss) + 1)
    marker = "o" if len(epochs) < 30 else None
    ax.plot(epochs, history.train_loss, color=TRAIN_COLOUR, marker=marker, label="train")
    if history.val_loss:
        ax.plot(epochs[: len(history.val_loss)], history.val_loss, color=VAL_COLOUR, marker=marker, label="validation")
    _maybe_log_y(ax, scale)
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.legend()


def weight_norm_png(outcome: TrainingOutcome) -> bytes:
    """‖w‖₂ per epoch of the final fit, against the norm the unregularized fit ends with."""
    fig, ax = _figure()
    norms = outcome.result.history.weight_norm
    epochs = np.arange(1, len(norms) + 1)
    marker = "o" if len(epochs) < 30 else None
    ax.plot(epochs, norms, color=TRAIN_COLOUR, marker=marker, label=f"λ = {outcome.lam:g}")
    reference = float(np.linalg.norm(outcome.reference.model.weight_vector()))
    ax.axhline(reference, color=REFERENCE_COLOUR, linestyle="--", label=f"λ = 0 (final ‖w‖ = {reference:.3g})")
    _maybe_log_y(ax, [*norms, reference])
    ax.set_title("Weight norm: decay shrinks ‖w‖₂")
    ax.set_xlabel("epoch")
    ax.set_ylabel("‖w‖₂ (bias excluded)")
    ax.legend()
    return _png(fig)


def layer_norms_png(outcome: TrainingOutcome) -> bytes:
    """‖W_l‖₂ per epoch for each layer of the final fit, against the norm each ends with in the unregularized fit."""
    fig, ax = _figure()
    norms = np.array(outcome.result.history.layer_norms)
    epochs = np.arange(1, norms.shape[0] + 1)
    reference = [float(np.linalg.norm(W)) for W, _ in outcome.reference.model.layers]
    for index, final in enumerate(reference):
        name = "head" if index == len(reference) - 1 else f"hidden {index + 1}"
        colour = f"C{index}"
        ax.plot(epochs, norms[:, index], color=colour, label=f"{name}, λ = {outcome.lam:g}")
        ax.axhline(final, color=colour, linestyle="--", label=f"{name}, λ = 0 (final {final:.3g})")
    _maybe_log_y(ax, [*norms.ravel(), *reference])
    ax.set_title("Weight norm per layer: decay shrinks every layer, never a bias")
    ax.set_xlabel("epoch")
    ax.set_ylabel("‖W‖₂ of the layer")
    ax.legend(fontsize="small")
    return _png(fig)


def weight_histograms_png(outcome: TrainingOutcome) -> bytes:
    """One panel per layer: the histogram of its weights without decay (λ = 0) and with it, on shared bins."""
    layers = list(zip(outcome.reference.model.layers, outcome.model.layers, strict=True))
    fig = Figure(figsize=(3.6 * len(layers), 3.8), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(layers), squeeze=False)[0]
    for index, (ax, ((W0, _), (W, _))) in enumerate(zip(axes, layers, strict=True)):
        bins = np.histogram_bin_edges(np.concatenate([W0.ravel(), W.ravel()]), bins=40)
        ax.hist(W0.ravel(), bins=bins, color=REFERENCE_COLOUR, alpha=0.6, label="λ = 0")
        ax.hist(W.ravel(), bins=bins, color=TRAIN_COLOUR, alpha=0.6, label=f"λ = {outcome.lam:g}")
        ax.set_title("head" if index == len(layers) - 1 else f"hidden layer {index + 1}")
        ax.set_xlabel("weight")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("count")
    axes[0].legend(fontsize="small")
    fig.suptitle("Weights per layer: decay pulls them towards 0")
    return _png(fig)


def loss_comparison_png(outcome: TrainingOutcome) -> bytes:
    """Training and validation loss per epoch without decay (λ = 0) and with it, side by side on one scale."""
    fig = Figure(figsize=(11.0, 4.4), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    runs = [(outcome.reference.history, "λ = 0 (no weight decay)"), (outcome.result.history, f"λ = {outcome.lam:g}")]
    values = [v for history, _ in runs for v in (*history.train_loss, *history.val_loss)]
    for ax, (history, title) in zip(axes, runs, strict=True):
        _draw_losses(ax, history, values, title)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel(_loss_name(outcome))
    fig.suptitle(f"{outcome.label}: without decay the training loss falls and the validation loss need not")
    return _png(fig)


def fit_comparison_png(outcome: TrainingOutcome) -> bytes:
    """For one input feature: the fitted curve without decay (λ = 0) and with it, side by side, over the data."""
    fig = Figure(figsize=(11.0, 4.4), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    train, val = outcome.train, outcome.val
    xs = [train.X[:, 0]] + ([val.X[:, 0]] if val is not None else [])
    ys = [train.y] + ([val.y] if val is not None else [])
    x_all, y_all = np.concatenate(xs), np.concatenate(ys)
    pad = 0.05 * float(np.ptp(x_all) or 1.0)
    grid = np.linspace(float(x_all.min()) - pad, float(x_all.max()) + pad, 400)
    y_pad = 0.5 * float(np.ptp(y_all) or 1.0)
    panels: list[tuple[Axes, FittedModel, str, str]] = [
        (axes[0], outcome.reference.model, "λ = 0 (no weight decay)", "reference"),
        (axes[1], outcome.model, f"λ = {outcome.lam:g} (weight decay)", "final"),
    ]
    for ax, model, title, which in panels:
        metrics = outcome.reference_metrics if which == "reference" else outcome.metrics
        ax.scatter(train.X[:, 0], train.y, color=TRAIN_COLOUR, s=22, label="train", zorder=3)
        if val is not None:
            ax.scatter(val.X[:, 0], val.y, color=VAL_COLOUR, marker="s", s=22, label="validation", zorder=3)
        ax.plot(grid, model.predict(grid[:, None]), color="black", linewidth=1.8, label="fitted curve")
        score = metrics.get("val_mse", metrics.get("train_mse", float("nan")))
        ax.set_title(f"{title}\n{'val' if 'val_mse' in metrics else 'train'} MSE = {score:.4g}")
        ax.set_xlabel(train.feature_names[0])
        ax.set_ylim(float(y_all.min()) - y_pad, float(y_all.max()) + y_pad)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    axes[0].set_ylabel(train.target_name)
    fig.suptitle(f"{outcome.label} fit: a curve that bends too much overfits")
    return _png(fig)


def decision_boundary_png(outcome: TrainingOutcome) -> bytes:
    """For two input features: the classes a classifier predicts without decay (λ = 0) and with it, over the data."""
    fig = Figure(figsize=(11.0, 4.8), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    train, val = outcome.train, outcome.val
    X = train.X if val is None else np.vstack([train.X, val.X])
    pad = 0.1 * np.maximum(np.ptp(X, axis=0), 1e-9)
    xs = np.linspace(X[:, 0].min() - pad[0], X[:, 0].max() + pad[0], 200)
    ys = np.linspace(X[:, 1].min() - pad[1], X[:, 1].max() + pad[1], 200)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    levels = np.arange(len(train.class_names) + 1) - 0.5
    panels = [
        (axes[0], outcome.reference.model, "λ = 0 (no weight decay)", outcome.reference_metrics),
        (axes[1], outcome.model, f"λ = {outcome.lam:g} (weight decay)", outcome.metrics),
    ]
    for ax, model, title, metrics in panels:
        predicted = model.predict(grid).reshape(gx.shape)
        ax.contourf(gx, gy, predicted, levels=levels, cmap="coolwarm", alpha=0.3)
        ax.contour(gx, gy, predicted, levels=levels[1:-1], colors="black", linewidths=1.2)
        ax.scatter(train.X[:, 0], train.X[:, 1], c=train.y, cmap="coolwarm", s=16, edgecolors="k", label="train")
        if val is not None:
            ax.scatter(val.X[:, 0], val.X[:, 1], c=val.y, cmap="coolwarm", marker="s", s=16, label="validation")
        which = "val" if "val_accuracy" in metrics else "train"
        ax.set_title(f"{title}\n{which} accuracy = {metrics.get(f'{which}_accuracy', float('nan')):.3f}")
        ax.set_xlabel(train.feature_names[0])
        ax.legend(loc="best", fontsize="small")
    axes[0].set_ylabel(train.feature_names[1])
    fig.suptitle(f"{outcome.label} decision boundary: without decay it bends around every point")
    return _png(fig)


def validation_curve_png(sweep: SweepResult, *, metric: str = "loss") -> bytes:
    """Mean training and validation loss against λ (log scale), ±1 std band, best λ marked."""
    fig, ax = _figure()
    positive = [p for p in sweep.points if p.lam > 0.0]
    zero = next((p for p in sweep.points if p.lam == 0.0), None)
    values: list[float] = []
    if positive:
        lams = np.array([p.lam for p in positive])
        train = np.array([p.train_loss for p in positive])
        val = np.array([p.val_loss for p in positive])
        std = np.array([p.val_loss_std for p in positive])
        ax.plot(lams, train, color=TRAIN_COLOUR, marker="o", label="train (mean)")
        ax.plot(lams, val, color=VAL_COLOUR, marker="o", label="validation (mean)")
        # On a log axis a band reaching zero would stretch the plot over hundreds of decades.
        lower = np.where(val - std > 0.0, val - std, val / 2.0)
        ax.fill_between(lams, lower, val + std, color=VAL_COLOUR, alpha=0.15, label="±1 std")
        ax.set_xscale("log")
        values += [*train, *val]
    if zero is not None:
        ax.axhline(zero.val_loss, color=VAL_COLOUR, linestyle=":", label=f"validation at λ = 0 ({zero.val_loss:.3g})")
        ax.axhline(zero.train_loss, color=TRAIN_COLOUR, linestyle=":", label=f"train at λ = 0 ({zero.train_loss:.3g})")
        values += [zero.train_loss, zero.val_loss]
    if sweep.best_lam > 0.0:
        ax.axvline(sweep.best_lam, color="black", linestyle="--", label=f"best λ = {sweep.best_lam:g}")
    _maybe_log_y(ax, values)
    how = {"kfold": f"{sweep.folds}-fold", "holdout": "holdout", "loo": "leave-one-out"}[sweep.validation]
    timing = f", {sweep.seconds_per_lam * 1e3:.3g} ms per λ" if sweep.seconds_per_lam is not None else ""
    ax.set_title(f"Validation curve ({how}): best λ = {sweep.best_lam:g}{timing}")
    ax.set_xlabel("λ (weight decay strength)")
    ax.set_ylabel(metric)
    ax.legend(fontsize="small")
    return _png(fig)


def _loss_name(outcome: TrainingOutcome) -> str:
    return "MSE" if outcome.model.kind == "linear" else "log-loss"


def _figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=(7.0, 4.4), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.grid(True, alpha=0.3)
    return fig, ax


def _maybe_log_y(ax: Axes, values: list[float] | FloatArray) -> None:
    """Switch to a log y-axis when positive values span more than two decades."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr) & (arr > 0.0)]
    if arr.size and float(arr.max()) / float(arr.min()) > 100.0:
        ax.set_yscale("log")
        # An interpolating fit has a training loss near 1e-20; showing that would flatten everything else.
        top = float(arr.max())
        ax.set_ylim(bottom=max(float(arr.min()) / 2.0, top * 1e-12), top=top * 3.0)


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
