"""Fixtures shared by the kernel's fault tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from quartet_shared.settings import KernelSettings
from quartet_tools.harness.processes import Workers

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def workers(settings: KernelSettings, tmp_path: Path) -> Iterator[Workers]:
    """Worker processes of one test, stopped (and their logs printed) when it ends."""
    # From the checkout, `python -m tests.support.job_worker` finds the tests' own modules.
    w = Workers(settings, tmp_path, cwd=REPO)
    yield w
    w.terminate_all()
