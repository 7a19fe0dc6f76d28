"""The project's Helm chart and the pinned helm that renders it, for the chart checks and the pod tests."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from quartet_tools.infra import ensure_helm

from tests.deploy.conftest import REPO

CHART = REPO / "deploy" / "helm" / "quartet"


@cache
def helm() -> Path:
    """The pinned helm binary (built on first use, then cached outside the repository)."""
    return ensure_helm()
