"""The planning benchmark suite: its instance files, its statistics on data with known answers, a quick run."""

from __future__ import annotations

import importlib.util
import math
import re
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from path_planner.domain.generator import THREATS, generate, has_corridor
from path_planner.settings import PlannerSettings
from path_planner.terrain_io import TerrainFileLoader, jacksboro_terrain
from path_planner.worker import PlanningKind
from PIL import Image
from quartet_contracts.schemas.planning import PlanRequested
from quartet_shared.safe_yaml import safe_load

BENCH = Path(__file__).parents[2] / "bench" / "bench_planning_suite.py"


@pytest.fixture(scope="module")
def suite() -> ModuleType:
    """bench/bench_planning_suite.py as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_planning_suite_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Dataclasses resolve their module through sys.modules, and the pool's forked workers find it there.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _seed(path: Path) -> int:
    found = re.search(r"generator seed (\d+)", path.read_text().splitlines()[0])
    assert found is not None
    return int(found.group(1))


def test_24_instances_six_per_kind(suite: ModuleType) -> None:
    files = suite.instance_files()
    assert len(files) == 24
    assert [p.stem.rsplit("-", 1)[0] for p in files] == [k for k in suite.KINDS for _ in range(6)]


def test_every_instance_loads_as_a_job_has_a_checked_corridor_and_fits_the_service(suite: ModuleType) -> None:
    kind = PlanningKind(PlannerSettings().max_evaluations, terrain_loader=TerrainFileLoader(suite.TERRAIN_ROOT))
    for path in suite.instance_files():
        kind.check_spec(PlanRequested.model_validate(safe_load(path.read_text())))
        scenario = suite.load_instance(path)
        assert THREATS[0] <= len(scenario.threats) <= THREATS[1], path.name
        b = scenario.bounds
        assert math.dist(scenario.start[:2], scenario.goal[:2]) >= 0.5 * min(b.x_max - b.x_min, b.y_max - b.y_min)
        assert has_corridor(scenario), path.name


def test_jacksboro_instances_are_the_real_elevation_model_at_its_cell_size(suite: ModuleType) -> None:
    dem = jacksboro_terrain()
    for path in suite.instance_files():
        if path.stem.startswith("jacksboro"):
            terrain = suite.load_instance(path).terrain
            assert terrain.cell_size == pytest.approx(92.77, abs=0.01)
            assert terrain.height.shape == dem.height.shape
            assert np.abs(terrain.height - dem.height).max() <= 0.5 * suite.HEIGHT_STEP + 1e-9


def test_peaks_instances_rebuild_the_generators_terrain_exactly(suite: ModuleType) -> None:
    for path in suite.instance_files():
        if path.stem.startswith("peaks"):
            generated = generate(_seed(path), "peaks")
            assert suite.load_instance(path).terrain.fingerprint == generated.terrain.fingerprint


@pytest.mark.parametrize("name", ["urban-01", "jacksboro-02"])
def test_writing_again_gives_the_committed_instance(
    suite: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(suite, "TERRAIN_ROOT", tmp_path)
    kind, number = name.rsplit("-", 1)
    written = suite.write_instance(kind, int(number) - 1, tmp_path / "suite")
    committed = suite.SUITE_DIR / f"{name}.yaml"
    assert written.read_text() == committed.read_text()
    terrain = safe_load(committed.read_text())["scenario"]["terrain"]["path"]
    again = np.asarray(Image.open(tmp_path / terrain))
    assert np.array_equal(again, np.asarray(Image.open(suite.SUITE_DIR.parent / terrain)))


def test_mean_ranks_share_ties(suite: ModuleType) -> None:
    medians = np.array([[1.0, 2.0, 3.0], [1.0, 3.0, 2.0], [2.0, 1.0, 3.0], [5.0, 5.0, 9.0]])
    np.testing.assert_allclose(suite.mean_ranks(medians), [(1 + 1 + 2 + 1.5) / 4, (2 + 3 + 1 + 1.5) / 4, 11 / 4])


def test_friedman_of_a_consistent_order(suite: ModuleType) -> None:
    """Ten blocks ranking three treatments the same way: chi-square = 12/(nk(k+1))·ΣR² − 3n(k+1) = 20."""
    medians = np.tile([1.0, 2.0, 3.0], (10, 1)) + np.arange(10)[:, None]
    chi2, p = suite.friedman(medians)
    assert chi2 == pytest.approx(20.0)
    assert p == pytest.approx(math.exp(-10.0))  # chi-square with 2 degrees of freedom: sf(x) = exp(−x/2)


def test_posthoc_against_the_control_with_holm(suite: ModuleType) -> None:
    """Control below A on all 10 instances (exact two-sided p = 2/2¹⁰), equal to B everywhere (p = 1)."""
    control = np.arange(1.0, 11.0)
    medians = np.column_stack([control, control + np.arange(1.0, 11.0), control])
    a, b = suite.posthoc_vs_control(medians, ["iboa", "a", "b"])
    assert (a.name, a.control_better, a.control_worse) == ("a", 10, 0)
    assert a.p == pytest.approx(2 / 1024)
    assert a.p_holm == pytest.approx(2 * 2 / 1024)  # the smaller of two p-values times 2
    assert a.significant
    assert (b.name, b.control_better, b.control_worse, b.p, b.p_holm, b.significant) == ("b", 0, 0, 1.0, 1.0, False)


def test_success_rate_counts_runs_within_one_percent(suite: ModuleType) -> None:
    costs = np.array([[[100.0, 100.9, 101.1, 200.0], [101.0, 102.0, 103.0, 104.0]]])
    np.testing.assert_allclose(suite.success_rates(costs, np.array([100.0])), [[0.5, 0.25]])


def test_ecdf_points(suite: ModuleType) -> None:
    x, y = suite.ecdf_points(np.array([2.0, 1.0, 4.0, 2.0]))
    np.testing.assert_allclose(x, [1.0, 2.0, 4.0])
    np.testing.assert_allclose(y, [0.25, 0.75, 1.0])


def test_goal_verdicts_on_constructed_runs(suite: ModuleType) -> None:
    """IBOA ranks first, is at or below L-SHADE on 2 of 3 instances, but 2 % above SPSO on the third."""
    medians = np.array(
        [
            [100.0, 110.0, 101.0, 120.0, 105.0, 106.0],
            [100.0, 110.0, 101.0, 120.0, 100.0, 106.0],
            [102.0, 110.0, 100.0, 120.0, 101.0, 106.0],
        ]
    )
    costs = np.repeat(medians[:, :, None], 3, axis=2)
    runs = suite.SuiteRuns(list(suite.OPTIMIZERS), {1000: costs}, {1000: np.ones_like(costs, dtype=bool)}, 0.0)
    rows = suite.goal_rows(runs, ["p", "q", "r"], quick=False)
    assert rows[2].endswith("| 1.83 vs SPSO 2.00: met |")
    assert rows[3].endswith("| 2/3: met |")
    assert rows[4].endswith("| worst 1.0200 (r); 1 over: NOT met |")


@pytest.mark.slow
def test_quick_run_reports_both_budgets_and_draws_the_ecdf(suite: ModuleType, tmp_path: Path) -> None:
    figure = tmp_path / "ecdf.png"
    report = suite.run(quick=True, figure=figure)
    assert Image.open(figure).format == "PNG"
    assert report.count("| peaks-01 |") == 2 and report.count("| jacksboro-06 |") == 2
    assert report.count("Friedman test over the 2 instances") == 2
    assert report.count("n/a (quick run)") == 6
    assert "nan" not in report
