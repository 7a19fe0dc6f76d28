"""`quartet simulate capacity`: the search driven against a load, its report and plot; and against real servers."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from quartet_shared.settings import KernelSettings
from quartet_tools.cli import app
from simulator.capacity import CapacityRun, job_specs, run_search, search_capacity, write_report
from simulator.domain.capacity import Observation, Phase
from typer.testing import CliRunner

from tests.support.servers import Servers


class SteadyQueue:
    """A queue served at `capacity` jobs/s with no noise: the latency is the backlog's wait plus 0.1 s."""

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity
        self.backlog = 0.0
        self.offered: list[float] = []

    def interval(self, rate: float, seconds: float) -> Observation:
        self.offered.append(rate)
        self.backlog += rate * seconds
        done = min(self.backlog, self.capacity * seconds)
        self.backlog -= done
        return Observation(rate, done / seconds, 0.1 + self.backlog / self.capacity, round(self.backlog))


def test_the_search_reports_the_held_rate_and_the_latency_at_it(tmp_path: Path) -> None:
    run = CapacityRun(interval_s=2, hold_s=6, max_duration_s=600)
    report = run_search(run, SteadyQueue(12.0))
    assert report.verdict.held
    assert report.sustained_rate is not None and 10 <= report.sustained_rate <= 12
    assert report.p95_at_sustained_s is not None and report.p95_at_sustained_s < 1.0
    assert report.steps[-1].phase is Phase.HOLD
    assert f"capacity: {report.sustained_rate:.2f} jobs/s (held" in report.summary()

    plot = write_report(report, tmp_path)

    assert plot.read_bytes().startswith(b"\x89PNG")
    saved = json.loads((tmp_path / "capacity.json").read_text())
    assert saved["verdict"]["sustained_rate"] == report.sustained_rate
    assert len(saved["steps"]) == len(report.steps)
    html = (tmp_path / "capacity.html").read_text()
    assert html.count("data:image/png;base64,") == 1
    assert report.summary() in html
    assert html.count("<td>hold</td>") == sum(1 for s in report.steps if s.phase is Phase.HOLD)


def test_a_stopped_search_ends_at_once_without_a_rate() -> None:
    stop = threading.Event()
    stop.set()
    load = SteadyQueue(12.0)
    report = run_search(CapacityRun(), load, stop)
    assert load.offered == []
    assert report.verdict.done and not report.verdict.held and report.sustained_rate is None


def test_the_load_is_the_bundled_small_jobs() -> None:
    specs = job_specs(("training", "planning"))
    assert set(specs) == {"training", "planning"}
    assert specs["training"].model_dump()["epochs"] == 20


def test_bad_parameters_exit_2_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_CAPACITY", '{"decrease_factor": 2}')
    result = CliRunner().invoke(app, ["simulate", "capacity"])
    assert result.exit_code == 2
    assert "SIMULATOR_CAPACITY" in result.output and "decrease_factor" in result.output


@pytest.mark.integration
def test_a_short_search_on_real_servers_finds_a_positive_rate(
    servers: Servers, settings: KernelSettings, unique: str, tmp_path: Path
) -> None:
    from simulator.settings import SimulatorSettings

    cfg = SimulatorSettings(**settings.model_dump(), topic_prefix=f"cap{unique}.", runs_dir=tmp_path, infra="none")
    run = CapacityRun(
        kinds=("training",), workers=1, interval_s=3, start_rate=1, hold_s=3, max_rate=4, max_duration_s=60
    )

    report = search_capacity(cfg, run, tmp_path / "capacity")

    assert report.sustained_rate is not None and report.sustained_rate > 0, report.summary()
    assert 1 <= len(report.steps) <= run.max_intervals
    assert (tmp_path / "capacity" / "capacity.png").read_bytes().startswith(b"\x89PNG")
    assert "data:image/png;base64," in (tmp_path / "capacity" / "capacity.html").read_text()
    assert json.loads((tmp_path / "capacity" / "capacity.json").read_text())["verdict"]["done"] is True
