"""Figures come back as PNG bytes, for one or several optimizers."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from path_planner import plots
from path_planner.domain.optimizers import Budget
from path_planner.domain.planner import PlannerConfig, plan
from path_planner.domain.scenario import NoFlyZone, Scenario
from PIL import Image

PNG = b"\x89PNG\r\n\x1a\n"


def colours_in(png: bytes) -> set[str]:
    """The optimizer colours that appear (exactly) among a figure's pixels."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    present = {f"#{r:02x}{g:02x}{b:02x}" for r, g, b in np.unique(pixels, axis=0)}
    return {name for name, colour in plots._COLOURS.items() if colour in present}


@pytest.mark.slow
def test_all_figures_are_png(peaks_scenario: Scenario) -> None:
    a = plan(peaks_scenario, PlannerConfig("iboa", Budget(10, 5)), seed=0)
    b = plan(peaks_scenario, PlannerConfig("astar", Budget(10, 5)))
    figures = plots.render_all(peaks_scenario, a, [b])
    assert sorted(figures) == ["fitness.png", "fitness_compare.png", "path_3d.png", "top_view.png"]
    for data in figures.values():
        assert data.startswith(PNG)
        w, h = Image.open(io.BytesIO(data)).size
        assert w > 400 and h > 300
    assert sorted(plots.render_all(peaks_scenario, a)) == ["fitness.png", "path_3d.png", "top_view.png"]


@pytest.mark.slow
def test_comparison_chart_draws_every_optimizer_and_the_single_chart_one(peaks_scenario: Scenario) -> None:
    runs = [plan(peaks_scenario, PlannerConfig(name, Budget(10, 8)), seed=1) for name in ("iboa", "boa", "spso")]
    figures = plots.render_all(peaks_scenario, runs[0], runs[1:])
    assert colours_in(figures["fitness_compare.png"]) == {"iboa", "boa", "spso"}
    assert colours_in(figures["fitness.png"]) == {"iboa"}
    assert colours_in(figures["top_view.png"]) >= {"iboa", "boa", "spso"}


@pytest.mark.slow
def test_fitness_chart_with_penalties_and_boxes(peaks_scenario: Scenario) -> None:
    sc = replace(peaks_scenario, no_fly_zones=(NoFlyZone(20, 40, 150, 170, 300),))
    r = plan(sc, PlannerConfig("boa", Budget(4, 3)), seed=0)
    assert plots.fitness_chart([r, replace(r, curve=r.curve + 2e6)]).startswith(PNG)
    assert plots.top_view(sc, [r]).startswith(PNG)
    assert plots.path_3d(sc, [r]).startswith(PNG)


def test_legend_gives_the_minimum_clearance(peaks_scenario: Scenario) -> None:
    r = plan(peaks_scenario, PlannerConfig("iboa", Budget(20, 10)), seed=0)
    assert f"min clearance {r.flight.min_clearance:,.1f} m" in plots.run_label(r)
