"""deploy/docker/Dockerfile: its structure, and its builder stage replayed without Docker.

The builder's two `uv sync` steps run here as they run in the image (same flags, same lock, only the root
pyproject, uv.lock, shared/ and the one service copied in), into a fresh virtual environment per service.
That environment must hold the service and the kernel and nothing else of the workspace or its dev tools,
and the service's console script must start from it: a dependency a service imports but does not declare,
or package data its wheel leaves out (the rental migrations), fails here before it fails in an image.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

from tests.deploy.conftest import BY_PROGRAM, REPO

DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
DEV_ONLY = {"pytest", "mypy", "ruff", "testcontainers", "schemathesis", "kubernetes-validate", "dockerfile-parse"}


@cache
def uv() -> list[str]:
    """The uv that runs this workspace: `uv run` names itself in $UV; else uv on the PATH or python3 -m uv."""
    candidates = [[os.environ["UV"]]] if os.environ.get("UV") else []
    candidates += [["uv"], ["python3", "-m", "uv"], [sys.executable, "-m", "uv"]]
    for command in candidates:
        try:
            if subprocess.run([*command, "--version"], capture_output=True).returncode == 0:
                return command
        except OSError:
            continue
    raise AssertionError("uv not found")


def instructions() -> list[dict[str, Any]]:
    """The Dockerfile's instructions, in order."""
    return [i for i in DockerfileParser(path=str(DOCKERFILE)).structure if i["instruction"] != "COMMENT"]


def stages() -> dict[str, list[dict[str, Any]]]:
    """Instructions per build stage, by stage name."""
    out: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] = []
    for ins in instructions():
        if ins["instruction"] == "FROM":
            current = []
            out[ins["value"].split(" AS ")[-1].strip()] = current
        current.append(ins)
    return out


def values(stage: str, instruction: str) -> list[str]:
    """The values of one kind of instruction in a stage."""
    return [i["value"] for i in stages()[stage] if i["instruction"] == instruction]


def test_runtime_stage_runs_unprivileged_with_a_healthcheck() -> None:
    """The final stage: a numeric non-root user, /healthz on the service's port, the role as the command."""
    assert list(stages()) == ["uv", "builder", "runtime"]
    (user,) = values("runtime", "USER")
    uid = int(user.split(":")[0])
    assert uid >= 1000
    (health,) = values("runtime", "HEALTHCHECK")
    assert "/healthz" in health and "HEALTHCHECK_PORT" in health
    assert any("HEALTHCHECK_PORT=${PORT}" in env for env in values("runtime", "ENV"))
    assert values("runtime", "EXPOSE") == ["${PORT}"]
    assert values("runtime", "ENTRYPOINT") == ['["quartet-service"]']
    assert values("runtime", "CMD") == ['["api"]']
    # Only the virtual environment crosses from the builder: no uv, no source tree, no compiler.
    copies = values("runtime", "COPY")
    assert copies == ["--from=builder /opt/quartet/venv /opt/quartet/venv"]


def test_both_stages_share_base_image_and_venv_path() -> None:
    """Console scripts keep their interpreter path, so builder and runtime must agree on both."""
    builder_from, runtime_from = values("builder", "FROM")[0], values("runtime", "FROM")[0]
    assert builder_from.split()[0] == runtime_from.split()[0] == "${PYTHON_IMAGE}"
    assert any("UV_PROJECT_ENVIRONMENT=/opt/quartet/venv" in env for env in values("builder", "ENV"))


def test_uv_in_the_image_is_the_uv_that_wrote_the_lock() -> None:
    """The builder's uv is the version this workspace uses, so `--frozen` reads the lock the same way."""
    args = {i["value"].split("=", 1)[0]: i["value"].split("=", 1)[1] for i in instructions()[:2]}
    ours = subprocess.run([*uv(), "--version"], capture_output=True, text=True).stdout.split()
    assert args["UV_IMAGE"] == f"ghcr.io/astral-sh/uv:{ours[1]}"
    assert args["PYTHON_IMAGE"].startswith(f"python:{sys.version_info.major}.{sys.version_info.minor}-")


def test_builder_installs_one_service_from_the_lock() -> None:
    """Both syncs are frozen (the lock is the truth), without dev dependencies, for quartet-${SERVICE} only."""
    syncs = [v for v in values("builder", "RUN") if "uv sync" in v]
    assert len(syncs) == 2
    for sync in syncs:
        assert "--frozen" in sync and "--no-dev" in sync and '--package "quartet-${SERVICE}"' in sync
    assert "--no-install-workspace" in syncs[0]
    assert "--no-editable" in syncs[1]


def test_build_context_holds_what_the_dockerfile_copies() -> None:
    """Every COPY source exists for every service and is let through .dockerignore."""
    reincluded = {
        line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines() if line.startswith("!")
    }
    for copy in values("builder", "COPY"):
        if copy.startswith("--from"):
            continue
        *sources, _dest = copy.split()
        for program in BY_PROGRAM:
            for source in sources:
                path = source.replace("${SERVICE}", program).rstrip("/")
                assert (REPO / path).exists(), path
                assert path.split("/")[0] in reincluded, f"{path} is excluded by .dockerignore"


@dataclass(frozen=True)
class Replayed:
    """One service's replayed builder: its environment, what is installed there, and its `--help`."""

    venv: Path
    frozen: str
    help: subprocess.CompletedProcess[str]


def _replay_builder(program: str, workdir: Path) -> Replayed:
    """Run the builder's steps for one service, then its console script from the result."""
    src, venv = workdir / "src", workdir / "venv"
    (src / "services").mkdir(parents=True)
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_LINK_MODE": "hardlink", "VIRTUAL_ENV": ""}
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(REPO / name, src / name)
    package = f"quartet-{program}"
    sync = [*uv(), "sync", "--quiet", "--frozen", "--no-dev", "--package", package]
    subprocess.run([*sync, "--no-install-workspace"], cwd=src, env=env, check=True, capture_output=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".venv", ".local")
    shutil.copytree(REPO / "shared", src / "shared", ignore=ignore)
    shutil.copytree(REPO / "services" / program, src / "services" / program, ignore=ignore)
    subprocess.run([*sync, "--no-editable"], cwd=src, env=env, check=True, capture_output=True)
    freeze = subprocess.run([*uv(), "pip", "freeze", "--python", str(venv / "bin" / "python")], capture_output=True)
    # Only the environment's own PATH and a scratch home: nothing of this workspace's .venv can leak in.
    help_ = subprocess.run(
        [str(venv / "bin" / program), "--help"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=workdir,
        env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(workdir), "MPLCONFIGDIR": str(workdir / "mpl")},
    )
    return Replayed(venv, freeze.stdout.decode(), help_)


@pytest.fixture(scope="module")
def environments(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Replayed]]:
    """The four services' image environments, replayed in parallel once for this module, then removed."""
    workdir = tmp_path_factory.mktemp("images")
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = {p: pool.submit(_replay_builder, p, workdir / p) for p in BY_PROGRAM}
            yield {p: f.result() for p, f in futures.items()}
    finally:
        # Where the uv cache is on another filesystem the environments are copies, not links: large.
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.parametrize("program", sorted(BY_PROGRAM))
def test_image_environment_holds_its_service_and_the_kernel_only(
    program: str, environments: dict[str, Replayed]
) -> None:
    """The service and quartet-shared, as wheels; no other service, no development tool."""
    frozen = environments[program].frozen
    names = {re.split(r"[=@ ]", line, maxsplit=1)[0].lower() for line in frozen.splitlines() if line.strip()}
    quartet = {n for n in names if n.startswith("quartet-")}
    assert quartet == {"quartet-shared", f"quartet-{program}"}
    assert not names & DEV_ONLY, sorted(names & DEV_ONLY)
    assert "-e " not in frozen, "workspace packages must be installed as wheels, not editable"


@pytest.mark.parametrize("program", sorted(BY_PROGRAM))
def test_console_script_starts_from_the_image_environment(program: str, environments: dict[str, Replayed]) -> None:
    """`<service> --help` works with only what the image has: every import is declared, every file shipped."""
    replayed = environments[program]
    assert replayed.help.returncode == 0, replayed.help.stderr[-3000:]
    assert "api" in replayed.help.stdout
    if program == "rental-manager":
        site = next((replayed.venv / "lib").glob("python3*/site-packages"))
        assert (site / "rental_manager" / "migrations" / "env.py").is_file(), "migrations missing from the wheel"
