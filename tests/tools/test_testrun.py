"""`make test`'s driver: which engine the docker-marked tests get, when they are deselected, and that an engine it
started is stopped. The project's engine itself is pointed at paths of the test's own (never the running one):
its start and stop are recorded, and the image build is a quick real process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from quartet_tools import engine, testrun
from quartet_tools.infra import InfraError

# What each half of `make test` must hand pytest, written out rather than read back from testrun: the native half
# deselects every docker-marked test on two xdist workers, a file's tests on one; the docker half selects only those.
NATIVE = ["-n", "2", "--dist", "loadfile", "-m", "not docker"]
DOCKER = ["-m", "docker"]
FAULTS = ["tests/shared/test_fault_delivery.py", "tests/shared/test_fault_jobservice.py"]


class Recorder:
    """Stands in for pytest, the engine's start and its stop: records each call."""

    def __init__(self, codes: dict[str, int] | None = None) -> None:
        self.codes = codes or {}
        self.runs: list[tuple[list[str], dict[str, str]]] = []
        self.started = 0
        self.stopped = 0

    def pytest(self, args: list[str], env: Mapping[str, str]) -> int:
        self.runs.append((args, dict(env)))
        return self.codes.get(args[-1], 0)

    def start(self) -> Mapping[str, str]:
        self.started += 1
        return {"DOCKER_HOST": "unix:///nowhere/started.sock"}

    def stop(self) -> None:
        self.stopped += 1


def _fail_to_start() -> Mapping[str, str]:
    raise InfraError("dockerd not ready after 60s")


@pytest.fixture
def no_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No Docker answers, and the project's engine lives (not running) under tmp_path."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/absent.sock")
    monkeypatch.setattr(engine, "SOCKET", tmp_path / "docker.sock")
    monkeypatch.setattr(engine, "PIDFILE", tmp_path / "dockerd.pid")
    monkeypatch.setattr(testrun, "BUILD_LOG", tmp_path / "build.log")
    monkeypatch.setattr(testrun, "BUILD", [sys.executable, "-c", "print('built')"])
    monkeypatch.setattr(testrun, "COLLECTOR_LOG", tmp_path / "collector.log")
    monkeypatch.setattr(
        testrun, "COLLECTOR_BUILD", [sys.executable, "-c", f"open({str(tmp_path / 'collector')!r}, 'w')"]
    )
    monkeypatch.delenv("CI", raising=False)
    return tmp_path


def test_on_ci_an_engine_that_cannot_start_fails_the_run_before_any_test(
    no_engine: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CI", "true")
    recorder = Recorder()
    assert testrun.main(_fail_to_start, recorder.stop, recorder.pytest) == 1
    assert recorder.runs == []
    err = capsys.readouterr().err
    assert "FAILED" in err and "CI=true" in err and "dockerd not ready" in err


def test_as_root_with_apt_an_engine_that_cannot_start_fails_the_run(
    no_engine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(testrun.os, "geteuid", lambda: 0)
    monkeypatch.setattr(testrun.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(testrun.sys, "platform", "linux")
    recorder = Recorder()
    assert testrun.main(_fail_to_start, recorder.stop, recorder.pytest) == 1
    assert recorder.runs == []


def test_where_no_engine_can_start_the_docker_tests_are_deselected_with_the_reason(
    no_engine: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(testrun.os, "geteuid", lambda: 1000)
    recorder = Recorder()
    assert testrun.main(recorder.start, recorder.stop, recorder.pytest) == 0
    assert [args for args, _ in recorder.runs] == [NATIVE]
    assert recorder.started == recorder.stopped == 0
    assert "docker-marked tests deselected: not root" in capsys.readouterr().err
    # The collector's build ran beside the tests and was waited for.
    assert (no_engine / "collector").exists()


def test_an_engine_started_for_the_run_serves_the_docker_tests_and_is_stopped_when_tests_fail(
    no_engine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    recorder = Recorder({"not docker": 1, "docker": 1})
    assert testrun.main(recorder.start, recorder.stop, recorder.pytest) == 1
    assert recorder.started == recorder.stopped == 1
    (native, native_env), (docker, docker_env), (faults, faults_env) = recorder.runs
    assert (native, docker, faults) == (NATIVE, DOCKER, FAULTS)
    # The native half keeps the fixtures' default (no engine of ours in its environment); the docker half has it.
    assert native_env["DOCKER_HOST"] == f"unix://{no_engine}/absent.sock"
    assert docker_env["DOCKER_HOST"] == faults_env["DOCKER_HOST"] == "unix:///nowhere/started.sock"
    # The fault tests run once on native servers (in the native half), once on servers in containers.
    assert (native_env["QUARTET_TEST_INFRA"], faults_env["QUARTET_TEST_INFRA"]) == ("native", "containers")
    assert (no_engine / "build.log").read_text().strip() == "built"


def test_a_failed_image_build_fails_the_run_without_the_docker_tests(
    no_engine: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(testrun, "BUILD", [sys.executable, "-c", "raise SystemExit('no wheel for numpy')"])
    recorder = Recorder()
    assert testrun.main(recorder.start, recorder.stop, recorder.pytest) == 1
    assert [args for args, _ in recorder.runs] == [NATIVE]
    assert recorder.stopped == 1
    assert "no wheel for numpy" in capsys.readouterr().err


def test_an_engine_that_already_answers_is_used_and_left_running(
    no_engine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(testrun, "docker_available", lambda: True)
    recorder = Recorder()
    assert testrun.main(recorder.start, recorder.stop, recorder.pytest) == 0
    assert [args for args, _ in recorder.runs] == [NATIVE, DOCKER, FAULTS]
    assert recorder.started == recorder.stopped == 0


def test_the_fault_tests_failing_on_servers_in_containers_fail_the_run(
    no_engine: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CI", "true")
    recorder = Recorder({FAULTS[-1]: 1})
    assert testrun.main(recorder.start, recorder.stop, recorder.pytest) == 1
    assert recorder.stopped == 1
    assert "the fault tests again, on servers in containers" in capsys.readouterr().err


def test_the_fault_tests_are_every_kernel_fault_test_file() -> None:
    assert testrun.fault_tests() == FAULTS


def test_the_engine_starts_without_the_compose_cli_which_prepare_builds_with_the_images(
    no_engine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quartet_tools import images

    calls: list[str] = []
    monkeypatch.setattr(engine, "up", lambda compose=True: calls.append(f"up compose={compose}") or {})
    monkeypatch.setattr(engine, "ensure_compose", lambda: calls.append("compose"))
    monkeypatch.setattr(images, "main", lambda argv: calls.append(" ".join(argv)) or 0)
    testrun.start_engine()
    monkeypatch.setenv("DOCKER_CONFIG", str(engine.CLIENT_CONFIG))
    assert testrun.prepare() == 0
    # Another engine's client (Docker Desktop's, say) has its own Compose: nothing to build for it.
    monkeypatch.setenv("DOCKER_CONFIG", str(no_engine / "elsewhere"))
    assert testrun.prepare() == 0
    assert calls == ["up compose=False", "compose", "build", "build"]


def test_every_pytest_run_prints_its_slowest_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    commands: list[list[str]] = []

    def run(command: list[str], **_: object) -> subprocess.CompletedProcess[bytes]:
        commands.append(command)
        return subprocess.CompletedProcess(command, 3)

    monkeypatch.setattr(testrun.subprocess, "run", run)
    assert testrun.pytest(testrun.NATIVE, {}) == 3
    assert commands == [[sys.executable, "-m", "pytest", "--durations=30", *NATIVE]]
