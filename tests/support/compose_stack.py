"""The repository's docker-compose.yml as a Compose project of a test's own: a unique name, free host ports, its
secrets generated into a temporary .env, and nothing from the caller's environment or .env leaking into `${...}`."""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from quartet_shared.net import free_port
from quartet_tools.infra import ROOT, SERVICE_ROLES, password_variable

from tests.support.auth import API_KEYS_JSON

# The host ports the tests reach, each published on 127.0.0.1 only: {service: its port inside the container}.
PUBLISHED = {"kafka": 9092, "training-api": 8001, "planner-api": 8002, "rental-api": 8003}
# Published by docker-compose.yml, not needed from the host here: left unpublished so no fixed port is taken.
UNPUBLISHED = ("redis", "postgres")
# What a docker client needs from the caller's environment; nothing else reaches Compose's interpolation.
CLIENT_VARIABLES = ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY")


class _Override(yaml.SafeDumper):
    """Writes Compose's `!override` tag, which replaces a list instead of merging into it."""


class Replace(list[str]):
    """A list Compose should take as it is."""


_Override.add_representer(Replace, lambda dumper, data: dumper.represent_sequence("!override", list(data)))


def generated_secrets() -> dict[str, str]:
    """Every secret docker-compose.yml requires, random, plus the test API keys (so the CLI's key is accepted)."""
    values = {name: secrets.token_hex(16) for name in ("POSTGRES_PASSWORD", *map(password_variable, SERVICE_ROLES))}
    values["RENTAL_JWT_SECRET"] = secrets.token_hex(32)
    values["RENTAL_ADMIN_EMAIL"] = "admin@example.test"
    values["RENTAL_ADMIN_PASSWORD"] = secrets.token_hex(16)
    values["QUARTET_API_KEYS"] = API_KEYS_JSON
    return values


def write_env_file(path: Path, values: dict[str, str]) -> Path:
    """A .env Compose reads literally (single-quoted values: the API keys are JSON)."""
    assert not any("'" in value for value in values.values())
    path.write_text("".join(f"{name}='{value}'\n" for name, value in values.items()))
    return path


def client_env() -> dict[str, str]:
    """The docker client's settings from the caller's environment, and nothing else."""
    return {name: os.environ[name] for name in CLIENT_VARIABLES if name in os.environ}


@dataclass
class ComposeStack:
    """One Compose project of the repository's file: its name, where its files are, its host ports."""

    project: str
    workdir: Path
    ports: dict[str, int] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, project: str, workdir: Path) -> ComposeStack:
        """Free ports and fresh secrets for a new project, written under `workdir`."""
        stack = cls(project, workdir, {name: free_port() for name in PUBLISHED}, generated_secrets())
        write_env_file(stack.env_file, stack.values)
        stack.override.write_text(yaml.dump(stack._override(), Dumper=_Override))
        return stack

    @property
    def env_file(self) -> Path:
        return self.workdir / ".env"

    @property
    def override(self) -> Path:
        return self.workdir / "override.yml"

    def _override(self) -> dict[str, Any]:
        services: dict[str, Any] = {
            name: {"ports": Replace([f"127.0.0.1:{self.ports[name]}:{inside}"])} for name, inside in PUBLISHED.items()
        }
        services["kafka"]["environment"] = {
            "KAFKA_ADVERTISED_LISTENERS": f"INTERNAL://kafka:19092,EXTERNAL://127.0.0.1:{self.ports['kafka']}"
        }
        services.update({name: {"ports": Replace([])} for name in UNPUBLISHED})
        return {"services": services}

    def command(self, *args: str, env_file: Path | None = None) -> list[str]:
        """`docker compose` for this project: the repository's file, the override, .env.example then our .env."""
        return [
            "docker",
            "compose",
            "--project-directory",
            str(ROOT),
            "-f",
            str(ROOT / "docker-compose.yml"),
            "-f",
            str(self.override),
            "--env-file",
            str(ROOT / ".env.example"),
            "--env-file",
            str(env_file or self.env_file),
            "-p",
            self.project,
            *args,
        ]

    def run(self, *args: str, timeout_s: float = 300, env_file: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run a compose command; never raises on its exit code."""
        return subprocess.run(
            self.command(*args, env_file=env_file),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=client_env(),
            check=False,
        )

    def variables(self) -> dict[str, str]:
        """What makes a plain `docker compose ...` (in the repository) address this project, as -p, -f and
        --env-file do: for commands written the way a user types them."""
        return {
            **client_env(),
            "COMPOSE_PROJECT_NAME": self.project,
            "COMPOSE_FILE": f"{ROOT / 'docker-compose.yml'}{os.pathsep}{self.override}",
            "COMPOSE_ENV_FILES": f"{ROOT / '.env.example'},{self.env_file}",
        }

    def url(self, service: str) -> str:
        """The base URL of a service's published port."""
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def kafka(self) -> str:
        """The broker's bootstrap address from the host."""
        return f"127.0.0.1:{self.ports['kafka']}"

    def container(self, service: str) -> str:
        """The id of a service's (one) container."""
        ids = self.run("ps", "--all", "--quiet", service).stdout.split()
        assert len(ids) == 1, f"{service} has containers {ids}"
        return ids[0]

    def logs(self, *services: str, tail: int = 60) -> str:
        """The last lines each service logged."""
        return self.run("logs", "--no-color", "--tail", str(tail), *services).stdout

    def leftovers(self) -> dict[str, list[str]]:
        """The project's containers, networks and volumes the engine still has (by Compose's project label)."""
        label = f"label=com.docker.compose.project={self.project}"
        found = {}
        listings = {"containers": ["ps", "-a"], "networks": ["network", "ls"], "volumes": ["volume", "ls"]}
        for kind, listing in listings.items():
            out = subprocess.run(
                ["docker", *listing, "--quiet", "--filter", label],
                capture_output=True,
                text=True,
                timeout=60,
                env=client_env(),
                check=True,
            )
            found[kind] = out.stdout.split()
        return found
