"""Fixtures for the deployment checks: the services' contract facts, their settings classes and their roles.

The Compose end-to-end test needs a Docker engine; like the `servers` fixture, we ask `docker_available()`,
and where none answers the test is deselected (reported as such, never as passed); with CI=true the run fails.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import os
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from pydantic import AliasChoices
from quartet_shared.settings import KernelSettings

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ServiceInfo:
    """One Quartet service as the contract names it: its console script (and image), package and port."""

    program: str
    package: str
    port: int


# The contract's table of parts and ports (CONTRACT.md, "Parts and where they listen").
SERVICES = (
    ServiceInfo("training-worker", "training_worker", 8001),
    ServiceInfo("path-planner", "path_planner", 8002),
    ServiceInfo("rental-manager", "rental_manager", 8003),
    ServiceInfo("simulator", "simulator", 8004),
)
BY_PROGRAM = {s.program: s for s in SERVICES}
# The PostgreSQL role each service connects as, in Compose and on Kubernetes (deploy/postgres/roles.sql).
SERVICE_ROLE = {
    "training-worker": "training",
    "path-planner": "planning",
    "rental-manager": "rental",
    "simulator": "simulator",
}
# Variables a container may carry that no settings class reads: libpq's own (password and TLS of PostgreSQL).
LIBPQ_VARIABLES = frozenset({"PGPASSWORD", "PGSSLMODE", "PGSSLROOTCERT"})


def settings_class(package: str) -> type[KernelSettings]:
    """The service's one settings class (a KernelSettings subclass defined in `<package>.settings`)."""
    try:
        module = importlib.import_module(f"{package}.settings")
    except ModuleNotFoundError as exc:
        pytest.xfail(f"{package}.settings is not written yet ({exc})")
    found = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, KernelSettings) and cls.__module__ == module.__name__
    ]
    assert len(found) == 1, f"{package}.settings should define one settings class, found {found}"
    return found[0]


def variable_names(cls: type[KernelSettings]) -> dict[str, str]:
    """Every environment variable the class reads, mapped to its field (names upper-case)."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    names: dict[str, str] = {}
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            for choice in alias.choices:
                if isinstance(choice, str):
                    names[choice.upper()] = name
        else:
            names[(prefix + name).upper()] = name
    return names


def required_variables(cls: type[KernelSettings]) -> set[str]:
    """The variables of the fields that have no default."""
    names = variable_names(cls)
    required = {name for name, field in cls.model_fields.items() if field.is_required()}
    return {var for var, name in names.items() if name in required}


def load_with(cls: type[KernelSettings], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> KernelSettings:
    """Build the settings from exactly `env` (the process's own variables and any .env file set aside)."""
    from quartet_shared.settings import load_settings

    for var in variable_names(cls):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    return load_settings(cls, _env_file=None)


@dataclass(frozen=True)
class Roles:
    """What a console script's `--help` said: the roles it accepts, or why it could not say."""

    accepted: frozenset[str]
    error: str = ""


@cache
def roles(program: str) -> Roles:
    """The roles a service's console script accepts, read from its own `--help` (in this process: the
    service modules are imported once per session anyway)."""
    package = BY_PROGRAM[program].package
    try:
        main = importlib.import_module(f"{package}.main").main
    except ModuleNotFoundError as exc:
        return Roles(frozenset(), f"{exc}")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        saved, sys.argv = sys.argv, [program, "--help"]
        try:
            main()
        finally:
            sys.argv = saved
    match = re.search(r"\{([a-z,-]+)\}", out.getvalue())
    if not match:
        return Roles(frozenset(), out.getvalue()[-2000:] or "no roles in --help")
    return Roles(frozenset(match.group(1).split(",")))


@pytest.fixture(scope="session")
def service_roles() -> dict[str, Roles]:
    """Every service's roles."""
    return {program: roles(program) for program in BY_PROGRAM}


def require_roles(program: str, wanted: set[str], service_roles: dict[str, Roles]) -> None:
    """Fail unless the console script accepts every role in `wanted` (xfail while its main is not written)."""
    found = service_roles[program]
    if not found.accepted:
        package = BY_PROGRAM[program].package
        if f"No module named '{package}.main'" in found.error:
            pytest.xfail(f"the {program} console script is not written yet")
        pytest.fail(f"{program} --help failed:\n{found.error}")
    missing = wanted - found.accepted
    assert not missing, f"{program} accepts {sorted(found.accepted)}, but the deployment runs {sorted(missing)}"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the tests that need a Docker engine where none answers (reported as deselected, not passed); on CI,
    where the engine must run, refuse the run instead. Last, so `-m "not docker"` has already removed them."""
    needing = [item for item in items if item.get_closest_marker("docker")]
    if not needing:
        return
    from quartet_tools.infra import docker_available

    if docker_available():
        return
    if os.environ.get("CI") == "true":
        raise pytest.UsageError(f"CI=true, yet no Docker engine answers for {len(needing)} docker-marked tests")
    config.hook.pytest_deselected(items=needing)
    items[:] = [item for item in items if not item.get_closest_marker("docker")]
