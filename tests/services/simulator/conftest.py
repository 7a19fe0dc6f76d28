"""Fixtures the simulator's test modules share."""

from __future__ import annotations

import pytest
from simulator import preflight


@pytest.fixture
def broker_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """The preflight's broker check passes without a broker."""
    monkeypatch.setattr(preflight, "kafka_problem", lambda _settings: None)
