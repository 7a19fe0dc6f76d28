"""`quartet simulate capacity`: the search driven against a load, its report and plot; and against real servers."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from quartet_shared.settings import KernelSettings
from quartet_tools.cli import app
from simulator.capacity import CapacityRun, job_specs, run_search, search_capacity, write_report
from simulator.domain.capacity import Move, Observation, Phase
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
    assert html.count("<td>hold</td>") == sum((s.phase is Phase.HOLD) + (s.move is Move.HOLD) for s in report.steps)
    assert "<td>multiplicative decrease</td>" in html and "<td>additive increase</td>" in html


def test_a_stopped_search_ends_at_once_without_a_rate() -> None:
    stop = threading.Event()
    stop.set()
    load = SteadyQueue(12.0)
    report = run_search(CapacityRun(), load, stop)
    assert load.offered == []
    assert report.verdict.done and not report.verdict.held and report.sustained_rate is None


class StoppedDuring(SteadyQueue):
    """A queue whose third interval is cut short by a stop."""

    def __init__(self, capacity: float, stop: threading.Event) -> None:
        super().__init__(capacity)
        self.stop = stop

    def interval(self, rate: float, seconds: float) -> Observation:
        if len(self.offered) == 2:
            self.stop.set()
        return super().interval(rate, seconds)


def test_a_stop_mid_interval_drops_that_interval_and_reports_the_best_flat_rate_unheld() -> None:
    stop = threading.Event()
    load = StoppedDuring(100.0, stop)
    report = run_search(CapacityRun(), load, stop)
    assert load.offered == [1, 2, 4]
    assert [s.offered for s in report.steps] == [1, 2]
    assert (report.verdict.held, report.sustained_rate) == (False, 2)
    assert report.verdict.reason == "stopped before a rate held"


class SlowQueue(SteadyQueue):
    """A queue whose every interval takes `seconds` of real time however short the search asked for."""

    def __init__(self, capacity: float, seconds: float) -> None:
        super().__init__(capacity)
        self.seconds = seconds

    def interval(self, rate: float, seconds: float) -> Observation:
        time.sleep(self.seconds)
        return super().interval(rate, seconds)


def test_the_search_ends_by_its_wall_clock_duration_even_when_intervals_run_long() -> None:
    run = CapacityRun(interval_s=0.5, max_duration_s=1.5)
    started = time.monotonic()
    report = run_search(run, SlowQueue(100.0, 0.8))
    assert time.monotonic() - started < 1.5 + 0.8 + 0.5
    # Three intervals fit the duration as the controller counts it; two fit the wall clock.
    assert run.max_intervals == 3 and len(report.steps) == 2
    assert report.verdict.done and report.verdict.reason == "out of time before a rate held"


def test_the_watch_sees_each_rate_before_it_is_offered_and_each_step_after() -> None:
    seen: list[tuple[float, int]] = []
    report = run_search(
        CapacityRun(interval_s=2, hold_s=4), SteadyQueue(12.0), watch=lambda c: seen.append((c.rate, len(c.steps)))
    )
    assert seen[0] == (1, 0)
    assert seen[-1][1] == len(report.steps)
    assert [n for _, n in seen] == sorted(n for _, n in seen)
    assert {n for _, n in seen} == set(range(len(report.steps) + 1))


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
