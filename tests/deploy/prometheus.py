"""The pinned promtool, Debian's (the server the Compose profile and `make metrics` run), and the files they
check: the alert rules (one file, for Compose and the chart)."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

from quartet_tools.infra import ensure_promtool
from quartet_tools.metrics import ensure_prometheus

from tests.deploy.conftest import REPO

RULES = REPO / "deploy" / "helm" / "quartet" / "files" / "alerts.yaml"


@cache
def promtool() -> Path:
    """The pinned promtool binary (built on first use, then cached outside the repository)."""
    return ensure_promtool()


def run_promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """promtool with `args`; its output and exit status."""
    return subprocess.run([str(promtool()), *map(str, args)], capture_output=True, text=True, timeout=120)


def run_debian_promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Debian's promtool (Prometheus 2.42, unpacked with its server) with `args`; its output and exit status."""
    binary = ensure_prometheus() / "usr" / "bin" / "promtool"
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, timeout=120)
