"""Plots are real PNGs with content: loss, weight norm, the side-by-side fit and the validation curve."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from matplotlib.image import imread
from training_worker.domain.config import (
    FeatureConfig,
    NetworkConfig,
    OptimizerConfig,
    RegularizationConfig,
    SweepConfig,
    TrainConfig,
)
from training_worker.domain.data import blobs, polynomial_1d
from training_worker.domain.runner import TrainingOutcome, train_once, train_sweep
from training_worker.plots import render_plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png(png: bytes) -> None:
    assert png.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 500
    assert height >= 300
    pixels = imread(io.BytesIO(png))
    # A blank canvas is one colour; axes, curves and text make many distinct pixel values.
    assert float(np.std(pixels[..., :3])) > 0.02
    assert len(np.unique(pixels[..., :3].reshape(-1, 3), axis=0)) > 50


@pytest.fixture(scope="module")
def sweep_outcome() -> TrainingOutcome:
    data = polynomial_1d(n_samples=20, seed=7)
    config = TrainConfig(
        optimizer=OptimizerConfig("closed_form"),
        regularization=RegularizationConfig("l2", 0.0),
        features=FeatureConfig(degree=15),
    )
    return train_sweep(data, config, SweepConfig((0.0, 1e-4, 1e-2, 1.0)), 0.2)


@pytest.mark.slow
def test_polynomial_sweep_renders_all_four_plots(sweep_outcome: TrainingOutcome) -> None:
    plots = render_plots(sweep_outcome)
    assert set(plots) == {"loss", "weight_norm", "fit", "validation_curve"}
    for png in plots.values():
        _check_png(png)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("network", "expected"),
    [
        (None, {"loss", "weight_norm", "loss_comparison", "decision_boundary"}),
        (
            NetworkConfig(hidden=(8, 4), activation="tanh", init="xavier"),
            {"loss", "weight_norm", "loss_comparison", "layer_norms", "weight_histograms", "decision_boundary"},
        ),
    ],
    ids=["logistic", "mlp"],
)
def test_a_2d_classifier_has_a_boundary_and_no_fit_plot_and_a_network_adds_per_layer_plots(
    network: NetworkConfig | None, expected: set[str]
) -> None:
    config = TrainConfig(
        model="logistic",
        optimizer=OptimizerConfig("gd", lr=0.5),
        epochs=40,
        regularization=RegularizationConfig("l2", 0.01),
        network=network,
    )
    plots = render_plots(train_once(blobs(n_samples=100, seed=1), config, 0.2))
    assert set(plots) == expected
    for png in plots.values():
        _check_png(png)


@pytest.mark.slow
def test_an_undecayed_fit_has_no_comparison_plot() -> None:
    config = TrainConfig(
        optimizer=OptimizerConfig("gd", lr=0.1),
        epochs=20,
        regularization=RegularizationConfig("none", 0.0),
        network=NetworkConfig(hidden=(4,)),
    )
    plots = render_plots(train_once(polynomial_1d(n_samples=20, seed=3), config, 0.2))
    assert set(plots) == {"loss", "weight_norm", "fit", "layer_norms", "weight_histograms"}


@pytest.mark.slow
def test_the_decision_boundary_shows_every_class_of_a_softmax_model() -> None:
    config = TrainConfig(model="softmax", optimizer=OptimizerConfig("gd", lr=0.5), epochs=30)
    outcome = train_once(blobs(n_samples=90, n_classes=3, seed=2), config, 0.2)
    png = render_plots(outcome)["decision_boundary"]
    _check_png(png)
