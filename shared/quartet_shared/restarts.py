"""When a supervisor restarts a process that died: the one policy of the simulator's `NativeWorkers` and of the
keeper each of `make up`'s native service processes runs under (`quartet_tools.keeper`).

The first restart waits `delay_s`; each further one within the last `window_s` waits twice the one before, up to
`max_delay_s`; once `per_window` restarts fall within `window_s` there is none, since a process that keeps dying
needs a person rather than a faster loop. A process that ran a whole window finds the count back at zero.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RestartSettings(BaseSettings):
    """The restart policy of `make up`'s native processes, from `QUARTET_RESTART_*`."""

    model_config = SettingsConfigDict(env_prefix="QUARTET_RESTART_", extra="ignore", env_ignore_empty=True)

    delay_s: float = Field(1.0, ge=0, le=60, description="Wait before the first restart.")
    max_delay_s: float = Field(30.0, ge=0, le=600, description="The longest wait, however many restarts came before.")
    per_minute: int = Field(5, ge=1, le=60, description="Restarts within one minute past which the keeper gives up.")


@dataclass
class RestartPolicy:
    """Backoff and a bound on restarts per window; `next_delay` says how long to wait, `restarted` counts one."""

    delay_s: float = 1.0
    max_delay_s: float = 30.0
    per_window: int = 5
    window_s: float = 60.0
    _restarts: deque[float] = field(default_factory=deque)

    @classmethod
    def of(cls, settings: RestartSettings) -> RestartPolicy:
        """The policy `settings` describe (a one-minute window)."""
        return cls(settings.delay_s, max(settings.delay_s, settings.max_delay_s), settings.per_minute)

    def recent(self, now: float) -> int:
        """Restarts within the window that ends at `now`."""
        while self._restarts and now - self._restarts[0] >= self.window_s:
            self._restarts.popleft()
        return len(self._restarts)

    def next_delay(self, now: float) -> float | None:
        """How long to wait before restarting a process that died at `now`; None once the bound is reached."""
        recent = self.recent(now)
        if recent >= self.per_window:
            return None
        return min(self.max_delay_s, self.delay_s * 2.0**recent)

    def restarted(self, at: float) -> None:
        """Count a restart made at `at`."""
        self._restarts.append(at)
