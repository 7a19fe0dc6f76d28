"""`make test` after lint: the native suite, then the docker-marked tests wherever a Docker engine runs or must run.

Which engine: one that already answers (DOCKER_HOST, /var/run/docker.sock, or the project's own left running by
`make engine-up`) is used as it is and left running. Otherwise, where the project's engine should start (CI=true,
or root on Linux with apt-get), `engine.up()` starts it, and failing to is a failure of the run, never a skip.
Anywhere else the docker-marked tests are deselected and the reason printed. The images build in the background
while the native tests run (the build mostly waits on the network and the disk); an engine started here is
stopped at the end, also when a test fails or the run is terminated. With an engine, the kernel's fault tests run
a second time after the docker-marked tests, on the project's server images through testcontainers, so both
ways the `servers` fixture can run are proven on every run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from quartet_tools import engine
from quartet_tools.infra import LOCAL, ROOT, InfraError, docker_available

BUILD_LOG = LOCAL / "images-build.log"
# What builds the Compose CLI and the images (`prepare`); a variable so the driver's own tests can run something
# quicker.
BUILD = [sys.executable, "-m", "quartet_tools.testrun", "prepare"]
# The OpenTelemetry Collector's build (minutes of both cores, the longest of the tools) runs beside the first
# tests at a lower priority; the trace viewer's tests run late and wait for it (`traces.ensure_collector`).
COLLECTOR_LOG = LOCAL / "collector-build.log"
COLLECTOR_BUILD = ["nice", "-n", "10", sys.executable, "-m", "quartet_tools.traces", "install"]
# The native suite mostly waits on its brokers (load 1-2 on 2 cores in one process): two pytest-xdist workers, each
# with its own servers on free ports (tests/conftest.py), share the cores. A file's tests go to one worker
# (loadfile), so its module fixtures (a service process, a fuzzing app) start once and its tests keep their order;
# spread test by test, tests/deploy/test_publish_jobs.py's workers started on both. Not `--dist loadgroup`: with
# pytest 9.2, xdist 3.8 writes each test's group into a node id field pytest no longer reads, so groups are silently
# ignored (pytest-dev/pytest-xdist#1386).
NATIVE = ["-n", "2", "--dist", "loadfile", "-m", "not docker"]
DOCKER = ["-m", "docker"]
# Every run prints its slowest tests, so CI's log shows where the time goes.
REPORT = ["--durations=30"]
# The fixtures' choice of servers (tests/support/servers.py): each half of the run names its own.
INFRA_VARIABLE = "QUARTET_TEST_INFRA"


def fault_tests() -> list[str]:
    """The kernel's fault test files, which also run on servers in containers."""
    return sorted(str(path.relative_to(ROOT)) for path in (ROOT / "tests" / "shared").glob("test_fault_*.py"))


@dataclass(frozen=True)
class EngineChoice:
    """The engine the docker-marked tests use: its client settings (None: no engine), and whether we started it."""

    env: Mapping[str, str] | None
    started: bool
    reason: str


def must_start() -> str:
    """Why the project's engine must start on this machine ('' where it cannot be expected to)."""
    if os.environ.get("CI") == "true":
        return "CI=true"
    if sys.platform == "linux" and os.geteuid() == 0 and shutil.which("apt-get"):
        return "root with apt-get on Linux"
    return ""


def cannot_start() -> str:
    """Why no engine can be started here, for the deselection message."""
    if sys.platform != "linux":
        return f"the project's engine runs on Linux only (this is {sys.platform}) and no Docker answers"
    if os.geteuid() != 0:
        return "not root, so the project's dockerd cannot start, and no Docker answers (DOCKER_HOST, docker.sock)"
    return "no apt-get to install docker.io, and no Docker answers (DOCKER_HOST, docker.sock)"


def start_engine() -> Mapping[str, str]:
    """The project's engine, without waiting for the Compose CLI: `prepare` builds that during the native suite
    (nine minutes on a fresh machine, serial otherwise)."""
    return engine.up(compose=False)


def prepare() -> int:
    """What the docker-marked tests need: the project's Compose CLI where its engine serves them, then the images."""
    from quartet_tools import images

    if os.environ.get("DOCKER_CONFIG") == str(engine.CLIENT_CONFIG):
        engine.ensure_compose()
    return images.main(["build"])


def choose_engine(start: Callable[[], Mapping[str, str]] = start_engine) -> EngineChoice:
    """Use an engine that answers, else start the project's where it must start (raising if it cannot), else none."""
    if docker_available():
        return EngineChoice({}, False, "a Docker engine answers")
    if engine.answers():
        return EngineChoice(engine.client_env(), False, "the project's engine (make engine-up) answers")
    required = must_start()
    if not required:
        return EngineChoice(None, False, cannot_start())
    ran_before = engine.running()
    try:
        env = start()
    except (InfraError, subprocess.CalledProcessError, OSError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        raise InfraError(f"the Docker engine must run here ({required}) but did not start: {exc}\n{detail}") from exc
    return EngineChoice(env, not ran_before, f"the project's engine, started here ({required})")


def pytest(args: list[str], env: Mapping[str, str]) -> int:
    """Run pytest with `args` (and REPORT) in `env`; its exit code."""
    return subprocess.run([sys.executable, "-m", "pytest", *REPORT, *args], env=dict(env), check=False).returncode


def build_images(env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """BUILD (`prepare`: the Compose CLI, then `make images`) in the background, its output in BUILD_LOG."""
    return _background(BUILD, BUILD_LOG, env)


def _background(command: list[str], logfile: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with logfile.open("wb") as log:
        return subprocess.Popen(command, env=dict(env), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _settle_collector(build: subprocess.Popen[bytes]) -> None:
    """Let the collector's build finish (a docker-marked test may still want it), then say how it went."""
    try:
        code = build.wait(1800)
    except subprocess.TimeoutExpired:
        build.terminate()
        code = build.wait(30)
    if code != 0:
        print(f"make test: the collector's build failed (log: {COLLECTOR_LOG})", file=sys.stderr)


def _finish_build(build: subprocess.Popen[bytes], began: float) -> int:
    code = build.wait()
    took = time.monotonic() - began
    if code != 0:
        tail = BUILD_LOG.read_text(errors="replace").splitlines()[-40:]
        print("make test: building the images failed:\n" + "\n".join(tail), file=sys.stderr)
    else:
        print(f"make test: images built in {took:.0f} s (log: {BUILD_LOG})", file=sys.stderr)
    return code


def run(choice: EngineChoice, run_pytest: Callable[[list[str], Mapping[str, str]], int] = pytest) -> int:
    """The native suite, then (with an engine) the docker-marked tests once the images are built, then the fault
    tests on servers in containers; the worst code. The collector builds in the background meanwhile."""
    native_env = {**os.environ, INFRA_VARIABLE: "native"}
    collector = _background(COLLECTOR_BUILD, COLLECTOR_LOG, native_env)
    try:
        return _halves(choice, run_pytest, native_env)
    finally:
        _settle_collector(collector)


def _halves(
    choice: EngineChoice, run_pytest: Callable[[list[str], Mapping[str, str]], int], native_env: Mapping[str, str]
) -> int:
    if choice.env is None:
        print(f"make test: docker-marked tests deselected: {choice.reason}", file=sys.stderr)
        return run_pytest(NATIVE, native_env)
    print(f"make test: docker-marked tests run on {choice.reason}", file=sys.stderr)
    docker_env = {**native_env, **choice.env}
    began = time.monotonic()
    build = build_images(docker_env)
    try:
        native = run_pytest(NATIVE, native_env)
        built = _finish_build(build, began)
    finally:
        if build.poll() is None:
            build.terminate()
            build.wait(30)
    if built != 0:
        return built
    # Every step runs whatever the ones before gave: one CI run reports every failure.
    docker = run_pytest(DOCKER, docker_env)
    print("make test: the fault tests again, on servers in containers (testcontainers)", file=sys.stderr)
    containers = run_pytest(fault_tests(), {**docker_env, INFRA_VARIABLE: "containers"})
    return native or docker or containers


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(
    start: Callable[[], Mapping[str, str]] = start_engine,
    stop: Callable[[], None] = engine.down,
    run_pytest: Callable[[list[str], Mapping[str, str]], int] = pytest,
) -> int:
    """`python -m quartet_tools.testrun`: what `make test` runs after lint."""
    try:
        choice = choose_engine(start)
    except InfraError as exc:
        print(f"make test: FAILED: {exc}", file=sys.stderr)
        return 1
    try:
        return run(choice, run_pytest)
    finally:
        if choice.started:
            print("make test: stopping the engine started for the run", file=sys.stderr)
            stop()


if __name__ == "__main__":
    # A terminated run (CI's timeout, say) still stops the engine it started: SystemExit runs main's finally.
    signal.signal(signal.SIGTERM, _terminated)
    raise SystemExit(prepare() if sys.argv[1:] == ["prepare"] else main())
