"""The run's timetable: actions due at seconds from the start, played in time order until done or stopped."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Action = Callable[[], None]


@dataclass
class Schedule:
    """Actions keyed by when they are due; equal times keep the order they were added in."""

    _queue: list[tuple[float, int, Action]] = field(default_factory=list)
    _order: itertools.count[int] = field(default_factory=itertools.count)

    def at(self, when_s: float, action: Action) -> None:
        """Run `action` `when_s` seconds after the start."""
        heapq.heappush(self._queue, (when_s, next(self._order), action))

    def play(
        self,
        stop: threading.Event,
        last_s: float,
        on_tick: Callable[[float], None],
        on_error: Callable[[float, Exception], None],
    ) -> None:
        """Run every action at its time, then wait until `last_s`; `stop` cuts both short.

        `on_tick(elapsed)` is called while waiting; a failing action is passed to `on_error` and the rest still run.
        """
        t0 = time.monotonic()
        while self._queue and not stop.is_set():
            when, _, due = self._queue[0]
            delay = t0 + when - time.monotonic()
            if delay > 0:
                stop.wait(min(delay, 0.5))
                on_tick(time.monotonic() - t0)
                continue
            heapq.heappop(self._queue)
            try:
                due()
            except Exception as exc:
                on_error(when, exc)
        # The load lasts the scenario's duration even when the last action came earlier.
        stop.wait(max(0.0, t0 + last_s - time.monotonic()))
