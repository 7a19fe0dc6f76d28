"""docker-compose.yml as Compose reads it: its containers, their environment and their published ports.

Shared by the deployment checks that read the file (test_compose.py and the Compose profile tests).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values

from tests.deploy.conftest import REPO

COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"


def compose() -> dict[str, Any]:
    """The Compose file as Compose reads it (YAML anchors and merge keys resolved)."""
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def is_app(svc: dict[str, Any]) -> bool:
    """Whether the container runs a Quartet service's image (built with its SERVICE argument)."""
    return "SERVICE" in svc.get("build", {}).get("args", {})


def app_containers() -> dict[str, dict[str, Any]]:
    """The containers built from a Quartet service's image, by Compose service name."""
    return {name: svc for name, svc in compose()["services"].items() if is_app(svc)}


def program_of(svc: dict[str, Any]) -> str:
    """The Quartet service whose image a container runs."""
    return str(svc["build"]["args"]["SERVICE"])


# Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?message}`.
INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, values: Mapping[str, str | None] | None = None) -> str:
    """`value` as Compose sees it with `--env-file .env.example` (what `make up` passes) or with `values`;
    a name without a value fails unless the file gives it a default."""
    given = dotenv_values(ENV_EXAMPLE) if values is None else values

    def lookup(match: re.Match[str]) -> str:
        name, operator, default = match.groups()
        found = given.get(name)
        if found:
            return found
        assert operator in ("-", ":-"), f"{name} is interpolated in docker-compose.yml but not set in .env.example"
        return default

    return INTERPOLATION.sub(lookup, value)


def container_env(
    svc: dict[str, Any], values: Mapping[str, str | None] | None = None, files: Mapping[str, Path] | None = None
) -> dict[str, str]:
    """What a container's process sees: its env files in order (.env is local only; `files` stands in for a path
    `make up` writes), then `environment` interpolated from `values` (.env.example by default)."""
    env: dict[str, str] = {}
    for entry in svc.get("env_file", []):
        name = entry["path"] if isinstance(entry, dict) else entry
        path = (files or {}).get(name, REPO / name)
        if path.name == ".env":
            continue
        env.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    env.update({k: interpolate(str(v), values) for k, v in (svc.get("environment") or {}).items()})
    return env


def published(mapping: object) -> tuple[str, str, str]:
    """A `ports` entry as (host address, host port, container port)."""
    address, host, container = str(mapping).rsplit(":", 2)
    return address, host, container
