"""The restart policy the simulator's supervisor and `make up`'s keepers share: backoff, and a bound per window."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from quartet_shared.restarts import RestartPolicy, RestartSettings


def test_each_restart_within_the_window_waits_twice_as_long_up_to_the_cap() -> None:
    policy = RestartPolicy(delay_s=1.0, max_delay_s=5.0, per_window=10, window_s=60.0)
    delays = []
    for t in range(5):
        delay = policy.next_delay(float(t))
        assert delay is not None
        delays.append(delay)
        policy.restarted(float(t))
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_past_the_bound_there_is_no_restart_until_the_window_has_moved_on() -> None:
    policy = RestartPolicy(delay_s=1.0, max_delay_s=30.0, per_window=3, window_s=60.0)
    for t in (0.0, 10.0, 20.0):
        policy.restarted(t)
    assert policy.next_delay(30.0) is None
    assert policy.next_delay(59.9) is None
    # The first restart has left the window: two remain, so the next waits 4 s.
    assert policy.next_delay(60.0) == 4.0
    # A process that ran a whole window without dying starts from the first delay again.
    assert policy.next_delay(81.0) == 1.0


def test_the_settings_come_from_the_environment_and_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUARTET_RESTART_DELAY_S", "0.5")
    monkeypatch.setenv("QUARTET_RESTART_PER_MINUTE", "3")
    policy = RestartPolicy.of(RestartSettings())
    assert (policy.delay_s, policy.max_delay_s, policy.per_window, policy.window_s) == (0.5, 30.0, 3, 60.0)
    monkeypatch.setenv("QUARTET_RESTART_PER_MINUTE", "0")
    with pytest.raises(ValidationError, match="per_minute"):
        RestartSettings()
