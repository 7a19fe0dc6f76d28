"""A Compose project of a test's own, as the image tests run one: its command prefix, name and host ports."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Project:
    """A Compose project of the servers: its command prefix, name and the host ports it publishes."""

    compose: list[str]
    name: str
    ports: dict[str, int]

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """`docker compose ARGS` for this project."""
        return subprocess.run([*self.compose, *args], capture_output=True, text=True, timeout=timeout)

    @property
    def bootstrap(self) -> str:
        return f"localhost:{self.ports['kafka']}"
