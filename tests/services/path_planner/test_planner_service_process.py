"""`path-planner all` as a real process driven by `quartet submit plan --wait --out`: the repository's scenario
files run end to end (live progress bar, summary, the figures saved), the SPSO terrain is read from the terrain
directory given at run time, SQLite is kept when DATABASE_URL is unset, and the process exits cleanly within
30 s of SIGTERM."""

from __future__ import annotations

import io
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from PIL import Image
from quartet_shared.jobservice import JobTopics
from quartet_shared.settings import KernelSettings

from tests.support.auth import ADMIN
from tests.support.cli import quartet
from tests.support.effects import wait_until
from tests.support.jobs import ServiceProcess, results_for, service_process

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).resolve().parents[3] / "services" / "path-planner" / "scenarios"
LIFTED_M = 1000.0
FIGURES = ["fitness.png", "fitness_compare.png", "path_3d.png", "top_view.png"]


@pytest.fixture
def terrain_dir(benchmark_dir: Path, tmp_path: Path) -> Path:
    """A terrain directory outside the repository holding the SPSO terrain lifted by 1,000 m, so a path flown
    over it shows which directory the service read."""
    with np.load(benchmark_dir / "uav-spso" / "terrain.npz") as data:
        height = np.asarray(data["height"]) + LIFTED_M
    target = tmp_path / "terrains" / "uav-spso"
    target.mkdir(parents=True)
    np.savez(target / "terrain.npz", height=height)
    return target.parent


@pytest.fixture
def service(settings: KernelSettings, unique: str, tmp_path: Path, terrain_dir: Path) -> Iterator[ServiceProcess]:
    """`path-planner all` on a free port; its terrain directory comes from the .env file in its working directory."""
    workdir = tmp_path / "service"
    workdir.mkdir()
    (workdir / ".env").write_text(f"PLANNER_TERRAIN_DIR={terrain_dir}\n")
    with service_process("path-planner", "PLANNER_", settings, unique, workdir) as running:
        yield running


def image_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG file."""
    size: tuple[int, int] = Image.open(io.BytesIO(path.read_bytes())).size
    return size


def test_scenario_files_run_through_the_cli_and_the_process_stops_on_sigterm(
    service: ServiceProcess, tmp_path: Path
) -> None:
    base, proc = service.base, service.proc
    peaks_out = tmp_path / "gaussian-peaks"
    peaks = quartet(
        "submit", "plan", str(SCENARIOS / "gaussian-peaks.yaml"), "--wait", "--out", str(peaks_out),
        "--planning-url", base, "--poll-interval", "0.1",
        cwd=tmp_path,
    )  # fmt: skip
    assert peaks.returncode == 0, peaks.stderr
    assert "100%" in peaks.stderr and "succeeded" in peaks.stderr  # the progress bar, at its end
    for row in ("best cost", "feasible", "min clearance", "cost terms", "evaluations", "runtime"):  # the summary
        assert row in peaks.stdout, row
    assert sorted(p.name for p in peaks_out.iterdir()) == FIGURES
    for name in FIGURES:
        assert f"saved {peaks_out / name}" in peaks.stdout
        width, height = image_size(peaks_out / name)
        assert width > 500 and height > 350

    spso_out = tmp_path / "spso"
    spso = quartet(
        "submit", "plan", str(SCENARIOS / "spso-christmas.yaml"), "--wait", "--json", "--out", str(spso_out),
        "--planning-url", base, "--poll-interval", "0.2",
        cwd=tmp_path,
    )  # fmt: skip
    assert spso.returncode == 0, spso.stderr
    answer = json.loads(spso.stdout)
    result = answer["result"]
    assert answer["job"]["status"] == "succeeded"
    assert result["feasible"] is True, result["problems"]
    assert result["evaluations"] == 100_000 and len(result["fitness_curve"]) == 200
    assert [(c["optimizer"], c["evaluations"]) for c in result["comparison"]] == [("spso", 100_000), ("boa", 100_000)]
    # the waypoints are about 150 m above a ground lifted by 1,000 m: the terrain came from the runtime directory
    assert min(p[2] for p in result["path"]) > LIFTED_M + 48
    assert result["best_cost"] < 6_000
    assert sorted(Path(p).name for p in answer["plots"]) == FIGURES

    assert (tmp_path / "service" / ".local" / "data" / "path-planner.sqlite3").is_file()
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert time.monotonic() - sent < 30


def test_bad_scenario_is_refused_with_the_field_named(service: ServiceProcess, tmp_path: Path) -> None:
    job = tmp_path / "bad.yaml"
    spec = (SCENARIOS / "spso-christmas.yaml").read_text().replace("path: uav-spso/terrain.npz", "path: nowhere.npz")
    job.write_text(spec)
    refused = quartet("submit", "plan", str(job), "--wait", "--planning-url", service.base, cwd=tmp_path)
    assert refused.returncode == 1
    assert "scenario.terrain.path" in refused.stderr and "nowhere.npz" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_worker_killed_mid_job_leaves_it_to_the_next_one_which_yields_one_result(
    settings: KernelSettings, unique: str, tmp_path: Path
) -> None:
    spec = yaml.safe_load((SCENARIOS / "gaussian-peaks.yaml").read_text())
    spec["optimizer"] = {"name": "iboa", "population": 200, "iterations": 3000}
    spec["compare"] = []
    workdir = tmp_path / "service"
    with service_process("path-planner", "PLANNER_", settings, unique, workdir) as first:
        job_id = httpx.post(f"{first.base}/jobs", json=spec, headers=ADMIN, timeout=30).json()["id"]

        def running() -> bool:
            job = httpx.get(f"{first.base}/jobs/{job_id}", timeout=5).json()
            return bool(job["status"] == "running" and job["progress"] > 0.05)

        wait_until(running, 120, "the job to be under way")
        first.proc.send_signal(signal.SIGKILL)  # no abort, no flush, no leaving the group
        first.proc.wait(10)
    # the same instance again (same topics, same SQLite file): its transaction from before the kill is fenced
    with service_process("path-planner", "PLANNER_", settings, unique, workdir) as second:
        job = httpx.get(f"{second.base}/jobs/{job_id}", timeout=5).json()
        assert job["status"] == "running"

        def finished() -> bool:
            return httpx.get(f"{second.base}/jobs/{job_id}", timeout=5).json()["status"] == "succeeded"

        wait_until(finished, 300, "the job to finish on the restarted worker")
        result = httpx.get(f"{second.base}/jobs/{job_id}/result", timeout=5).json()
        assert result["evaluations"] == 600_000 and result["cached"] is False
    topics = JobTopics.of("planning", f"p{unique}.")
    assert results_for(settings, topics, job_id) == ["quartet.planning.PlanCompleted.v1"]
