"""Settling: after the load, wait until nothing more can come out of the system, or say what is still missing."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simulator.domain.scenario import Scenario
from simulator.kafka_io import Collector, LagSampler, Publisher, ids_between
from simulator.settings import SimulatorSettings

if TYPE_CHECKING:
    from simulator.run import RentalDriver, Status

log = logging.getLogger(__name__)


@dataclass
class Settler:
    """Waits for every accepted job's result, all garbage dead-lettered, the rental events and the workers' commits."""

    settings: SimulatorSettings
    scenario: Scenario
    rental: RentalDriver | None
    status: Status
    note: Callable[[str], None]
    abort: threading.Event

    def settle(
        self, publisher: Publisher, collector: Collector, groups: dict[str, str], group_topics: dict[str, list[str]]
    ) -> bool:
        """Wait until every accepted job has a result, all garbage is dead-lettered and the workers caught up."""
        deadline = time.monotonic() + self.scenario.audit.settle_timeout_s
        publisher.flush(min(self.settings.publish_timeout_s, self.scenario.audit.settle_timeout_s))
        # Its own clients: kafka-python's are not thread-safe, and the sampler's thread is using its own.
        probe = LagSampler(self.settings, group_topics, 1.0)
        try:
            return self._await_settled(publisher, collector, probe, groups, deadline)
        finally:
            probe.stop()

    def _await_settled(
        self, publisher: Publisher, collector: Collector, lag: LagSampler, groups: dict[str, str], deadline: float
    ) -> bool:
        waiting = "nothing checked yet"
        while time.monotonic() < deadline and not self.abort.is_set():
            waiting = self._still_waiting_for(publisher, collector, lag, groups)
            self.status.message = waiting
            if not waiting:
                return True
            self.abort.wait(0.5)
        if self.abort.is_set():
            self.note(f"stopped before the system settled: {waiting}")
            return False
        self.note(f"the system did not settle within {self.scenario.audit.settle_timeout_s:g} s: {waiting}")
        for group in groups.values():
            self._explain_stuck(collector, lag, group)
        return False

    def _explain_stuck(self, collector: Collector, lag: LagSampler, group: str) -> None:
        """Note how far `group` is behind, and how many of the records it has not committed have a result anyway."""
        self.note(f"group {group}: {lag.describe(group)}")
        stuck = {tp: p for tp, p in (lag.positions(group) or {}).items() if p[0] < p[1]}
        if stuck:
            with contextlib.suppress(Exception):
                ids = ids_between(self.settings, stuck)
                done, _ = collector.has_results(ids)
                self.note(f"group {group}: {len(ids)} record(s) past its committed offsets, {done} with a result")

    def _still_waiting_for(
        self, publisher: Publisher, collector: Collector, lag: LagSampler, groups: dict[str, str]
    ) -> str:
        """What the run still waits for before nothing more can come out ("" once settled)."""
        jobs_done, jobs = collector.has_results(publisher.accepted_jobs())
        garbage_done, garbage = collector.has_dead_letters(publisher.accepted_garbage())
        self.status.results = jobs_done
        pending = publisher.pending()
        if pending or jobs_done < jobs or garbage_done < garbage:
            return (
                f"{jobs_done} of {jobs} jobs with a result, {garbage_done} of {garbage} garbage dead-lettered, "
                f"{pending} publish(es) unacknowledged"
            )
        if self.rental is not None and self.scenario.has_rental() and not self._rental_settled(collector):
            return "rental events not all relayed"
        # Every publish (duplicates too) consumed and committed by the workers: nothing more can come out.
        lags = {g: lag.positions(g) for g in groups.values()}
        behind = {g: {tp: p for tp, p in (found or {}).items() if p[0] < p[1]} for g, found in lags.items()}
        if any(found is None for found in lags.values()) or any(behind.values()):
            return "worker groups not caught up: " + "; ".join(
                f"{g} " + ("unreadable" if lags[g] is None else _behind(behind[g]) or "caught up") for g in lags
            )
        if not collector.caught_up():
            return "the audit has not read to the end of the results topics yet"
        return ""

    def _rental_settled(self, collector: Collector) -> bool:
        assert self.rental is not None
        try:
            return self.rental.settled(collector.snapshot()[3])
        except Exception as exc:  # the database may be briefly unreachable; settling tries again
            log.warning("rental settle check failed: %s", exc)
            return False


def _behind(partitions: dict[Any, tuple[int, int]]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}] committed {done} of {end}" for tp, (done, end) in partitions.items())
