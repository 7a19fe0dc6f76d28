"""Fixtures for the path-planner tests: the SPSO benchmark terrain and small analytic scenarios."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from path_planner.domain.scenario import Bounds, GaussianPeak, Scenario, Terrain, Threat, gaussian_terrain

REPO_ROOT = Path(__file__).resolve().parents[3]
BENCHMARK_DIR = REPO_ROOT.parent / "shared" / "benchmarks"
SPSO_DIR = BENCHMARK_DIR / "uav-spso"
SCENARIO_DIR = REPO_ROOT / "services" / "path-planner" / "scenarios"


@pytest.fixture(scope="session")
def benchmark_dir() -> Path:
    """The shared benchmarks directory beside the repository; its absence is a failure, not a skip."""
    terrain = SPSO_DIR / "terrain.npz"
    if not terrain.is_file():
        pytest.fail(
            f"SPSO benchmark terrain missing: expected {terrain} (shared/benchmarks/uav-spso beside the repository)"
        )
    return BENCHMARK_DIR


@pytest.fixture(scope="session")
def spso_height(benchmark_dir: Path) -> np.ndarray:
    """The 879 x 1045 SPSO heightmap."""
    with np.load(benchmark_dir / "uav-spso" / "terrain.npz") as data:
        return np.asarray(data["height"], dtype=np.float64)


@pytest.fixture(scope="session")
def spso_json(benchmark_dir: Path) -> dict[str, Any]:
    """The benchmark's scenario.json."""
    data: dict[str, Any] = json.loads((benchmark_dir / "uav-spso" / "scenario.json").read_text())
    return data


@pytest.fixture(scope="session")
def spso_scenario(spso_height: np.ndarray, spso_json: dict[str, Any]) -> Scenario:
    """The SPSO benchmark scenario built straight from scenario.json."""
    sc = spso_json
    return Scenario(
        terrain=Terrain(spso_height),
        bounds=Bounds(*sc["bounds"]["x"], *sc["bounds"]["y"]),
        start=tuple(sc["start"]),
        goal=tuple(sc["goal"]),
        z_min=sc["altitude_above_ground"]["min"],
        z_max=sc["altitude_above_ground"]["max"],
        n_waypoints=sc["waypoints_between_start_and_goal"],
        threats=tuple(Threat(t["x"], t["y"], t["radius"]) for t in sc["threats"]),
        uav_size=sc["uav_size"],
        danger_margin=sc["danger_margin"],
    )


@pytest.fixture(scope="session")
def peaks_scenario() -> Scenario:
    """A small Gaussian-peaks map (200 x 200) with three threats and five waypoints."""
    terrain = gaussian_terrain(
        200,
        200,
        [GaussianPeak(70, 60, 80, 20, 25), GaussianPeak(140, 130, 120, 30, 20), GaussianPeak(60, 150, 60, 25, 25)],
        base=10.0,
    )
    return Scenario(
        terrain=terrain,
        bounds=Bounds(1, 200, 1, 200),
        start=(15.0, 15.0, 40.0),
        goal=(185.0, 185.0, 40.0),
        z_min=20.0,
        z_max=60.0,
        n_waypoints=5,
        threats=(Threat(100, 100, 20), Threat(60, 120, 15), Threat(140, 60, 15)),
        name="small-peaks",
    )


def _flat_scenario(**overrides: Any) -> Scenario:
    args: dict[str, Any] = {
        "terrain": Terrain(np.zeros((100, 100))),
        "bounds": Bounds(1, 100, 1, 100),
        "start": (10.0, 10.0, 150.0),
        "goal": (10.0, 90.0, 150.0),
        "n_waypoints": 1,
    }
    args.update(overrides)
    return Scenario(**args)


@pytest.fixture
def flat() -> Any:
    """Factory of a flat 100 x 100 map, band 100..200, one waypoint, start (10, 10) and goal (10, 90) at 150 m."""
    return _flat_scenario
