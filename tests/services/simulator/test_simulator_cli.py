"""`quartet simulate` and `simulator run`: bad scenarios and a system that is not up end with exit 2 and a
message naming the line and field, or the unreachable part."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from quartet_shared.net import free_port
from quartet_tools.cli import app
from simulator.main import main
from typer.testing import CliRunner

from tests.support.effects import wait_until

BAD = """\
name: bad
seed: 1
duration_s: 5
rate: {shape: constant, per_second: 1}
mix:
  - action: planning
    weight: 1
    pool:
      - spec: {optimizer: {population: 1}}
"""


@pytest.fixture
def nothing_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings that point at ports where nothing listens."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:2/0")
    monkeypatch.setenv("SIMULATOR_INFRA", "none")


def test_quartet_simulate_names_the_unreachable_broker(nothing_up: None) -> None:
    result = CliRunner().invoke(app, ["simulate", "demo"])
    assert result.exit_code == 2
    assert "Kafka at 127.0.0.1:1 is unreachable" in result.output


def test_quartet_simulate_names_line_and_field_of_a_bad_scenario(nothing_up: None, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    result = CliRunner().invoke(app, ["simulate", str(path)])
    assert result.exit_code == 2
    assert f"{path}:9:9: mix[0].pool[0].spec.scenario: required field is missing" in result.output
    assert f"{path}:9:28: mix[0].pool[0].spec.optimizer.population: " in result.output


def test_simulator_run_exits_2_for_a_missing_file(nothing_up: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "no-such-scenario.yaml"]) == 2
    assert "no-such-scenario.yaml: cannot read" in capsys.readouterr().err


@pytest.mark.slow
def test_the_api_process_does_not_name_its_server_software(nothing_up: None, tmp_path: Path) -> None:
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SIMULATOR_")}, "SIMULATOR_PORT": str(port)}
    env.update({k: os.environ[k] for k in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "SIMULATOR_INFRA")})
    log = tmp_path / "api.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "simulator"), "api"], cwd=tmp_path, env=env, stdout=out, stderr=out
        )
    try:

        def health() -> httpx.Response | None:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            except httpx.HTTPError:
                return None

        wait_until(lambda: health() is not None, 60, "the simulator API to answer")
        answer = health()
        assert answer is not None and answer.status_code == 200
        assert "server" not in answer.headers
    finally:
        proc.kill()
        proc.wait(10)
