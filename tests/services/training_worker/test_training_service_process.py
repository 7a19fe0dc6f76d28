"""`training-worker all` as a real process driven by `quartet submit training --wait`: the example job files
run end to end (progress bar, summary, saved plots, a local CSV uploaded first), SQLite is kept when
DATABASE_URL is unset, and the process exits cleanly within 30 s of SIGTERM."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from quartet_shared.settings import KernelSettings

from tests.support.auth import ADMIN
from tests.support.cli import quartet
from tests.support.jobs import ServiceProcess, service_process
from tests.support.training import EXAMPLES_DIR

pytestmark = pytest.mark.integration


@pytest.fixture
def service(settings: KernelSettings, unique: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    """A `training-worker all` process on a free port, in its own working directory."""
    with service_process("training-worker", "TRAINING_", settings, unique, tmp_path / "service") as running:
        yield running


def test_the_process_does_not_name_its_server_software(service: ServiceProcess) -> None:
    answer = httpx.get(f"{service.base}/healthz", timeout=5)
    assert answer.status_code == 200
    assert "server" not in answer.headers


def test_examples_run_through_the_cli_and_the_process_stops_on_sigterm(service: ServiceProcess, tmp_path: Path) -> None:
    base, proc = service.base, service.proc
    out = tmp_path / "plots"
    sweep = quartet(
        "submit", "training", str(EXAMPLES_DIR / "polynomial_overfitting_sweep.yaml"), "--wait", "--out", str(out),
        "--training-url", base, "--poll-interval", "0.1",
        cwd=tmp_path, timeout_s=300,
    )  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr
    assert "100%" in sweep.stderr and "succeeded" in sweep.stderr  # the progress bar, at its end
    # The summary: the chosen λ, the metrics beside the λ = 0 reference, and the validation curve.
    for row in ("best λ", "mse", "validation (λ = 0)", "λ sweep (validation curve)"):
        assert row in sweep.stdout, row
    saved = sorted(p.name for p in out.iterdir())
    assert saved == ["fit.png", "loss.png", "validation_curve.png", "weight_norm.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in out.iterdir())
    for name in saved:
        assert f"saved {out / name}" in sweep.stdout

    csv_job = quartet(
        "submit", "training", str(EXAMPLES_DIR / "house_prices_csv.yaml"), "--wait", "--json",
        "--out", str(tmp_path / "csv"), "--training-url", base, "--poll-interval", "0.1",
        cwd=tmp_path, timeout_s=300,
    )  # fmt: skip
    assert csv_job.returncode == 0, csv_job.stderr
    answer = json.loads(csv_job.stdout)
    result = answer["result"]
    assert answer["job"]["status"] == "succeeded"
    assert result["feature_names"] == ["area_m2", "rooms", "age_years", "distance_km"]
    assert result["metrics"]["val_r2"] > 0.8
    assert sorted(Path(p).name for p in answer["plots"]) == ["loss.png", "loss_comparison.png", "weight_norm.png"]

    single = quartet(
        "submit",
        "training",
        str(EXAMPLES_DIR / "linear_single.yaml"),
        "--wait",
        "--training-url",
        base,
        cwd=tmp_path,
        timeout_s=300,
    )
    assert single.returncode == 0, single.stderr
    assert (tmp_path / "out").is_dir()  # the default --out: ./out/<job id>/

    assert (tmp_path / "service" / ".local" / "data" / "training-worker.sqlite3").is_file()
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert time.monotonic() - sent < 30


def test_bad_csv_is_refused_before_any_job_exists(service: ServiceProcess, tmp_path: Path) -> None:
    base = service.base
    (tmp_path / "bad.csv").write_text("a,b,price\n1,2,3\n4,five,6\n")
    job = tmp_path / "job.yaml"
    job.write_text("model: {kind: linear}\ndata: {kind: upload, file: bad.csv, label_column: price}\n")
    refused = quartet("submit", "training", str(job), "--training-url", base, cwd=tmp_path, timeout_s=300)
    assert refused.returncode == 1
    assert "'five' is not a number" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert httpx.get(f"{base}/jobs", headers=ADMIN, timeout=5).json() == []
    missing = tmp_path / "missing.yaml"
    missing.write_text("data: {kind: upload, file: nowhere.csv}\n")
    unreadable = quartet("submit", "training", str(missing), "--training-url", base, cwd=tmp_path, timeout_s=300)
    assert unreadable.returncode == 2
    assert "nowhere.csv" in unreadable.stderr
