"""Fixtures shared by the kernel's fault tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from quartet_shared.settings import KernelSettings

from tests.support.processes import Workers


@pytest.fixture
def workers(settings: KernelSettings, tmp_path: Path) -> Iterator[Workers]:
    """Worker processes of one test, stopped (and their logs printed) when it ends."""
    w = Workers(settings, tmp_path)
    yield w
    w.terminate_all()
