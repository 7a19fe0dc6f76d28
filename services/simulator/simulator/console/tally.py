"""The live audit as a running tally, fed what the collector read since the last time and bounded in memory.

It applies the run audit's rules to everything seen since the console started: a job is accepted once its
request is committed on a jobs topic, done once a committed outcome names it, doubled when more than one does.
A job with no outcome is in flight until `lost_after_s` has passed, then lost: live, nobody can tell a slow
job from a lost one sooner.

The console runs for as long as the simulator does, so nothing here grows with the number of jobs: counts are
integers, and the ids it remembers are bounded. Up to `max_jobs` jobs waiting for an outcome are remembered
(beyond that the oldest is counted lost for good), and the `max_jobs` most recent finished ones, so that a
second outcome is caught as doubled (one for a job finished earlier than that is no longer noticed; the page
says how many were forgotten). The specs of the newest planning requests are kept for their 3-D view.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from simulator.console.model import Accepted, AuditView
from simulator.console.timeline import Timeline
from simulator.domain.audit import DeadLetterSeen, EventSeen, ResultSeen

MAX_JOBS = 100_000
KEPT_SPECS = 200
SHOWN_IDS = 20


def _evict(memory: OrderedDict[str, Any], limit: int) -> int:
    dropped = 0
    while len(memory) > limit:
        memory.popitem(last=False)
        dropped += 1
    return dropped


@dataclass
class LiveTally:
    """Counts since the console started collecting, the jobs still awaited, and the charts' timeline."""

    request_types: Mapping[str, str]
    lost_after_s: float
    max_jobs: int = MAX_JOBS
    timeline: Timeline = field(default_factory=Timeline)
    accepted: int = 0
    completed: int = 0
    failed: int = 0
    doubled: int = 0
    dead_lettered: int = 0
    expired: int = 0
    forgotten: int = 0
    pending: OrderedDict[str, Accepted] = field(default_factory=OrderedDict)
    finished: OrderedDict[str, int] = field(default_factory=OrderedDict)
    early: OrderedDict[str, list[ResultSeen]] = field(default_factory=OrderedDict)
    doubled_ids: deque[str] = field(default_factory=lambda: deque(maxlen=SHOWN_IDS))
    specs: OrderedDict[str, Mapping[str, Any]] = field(default_factory=OrderedDict)

    def take(self, results: Iterable[ResultSeen], dead: Iterable[DeadLetterSeen], events: Iterable[EventSeen]) -> None:
        """Count what was read since the last call (requests first: an outcome read before its request waits)."""
        for event in events:
            self._request(event)
        for result in results:
            self._outcome(result)
        self.dead_lettered += sum(1 for _ in dead)
        self.expired += _evict(self.pending, self.max_jobs)
        self.forgotten += _evict(self.finished, self.max_jobs)
        # An outcome whose request never comes belongs to a job from before the console started.
        _evict(self.early, self.max_jobs)

    def _request(self, event: EventSeen) -> None:
        kind = self.request_types.get(event.ce_type)
        job_id = event.subject or event.key
        if kind is None or not job_id or job_id in self.pending or job_id in self.finished:
            return
        self.accepted += 1
        self.timeline.accepted(event.at)
        job = Accepted(job_id, kind, event.at)
        if kind == "planning":
            self.specs[job_id] = event.data
            _evict(self.specs, KEPT_SPECS)
        outcomes = self.early.pop(job_id, None)
        if outcomes is None:
            self.pending[job_id] = job
            return
        self._finish(job, outcomes[0])
        for extra in outcomes[1:]:
            self._outcome(extra)

    def _outcome(self, result: ResultSeen) -> None:
        job_id = result.job_id
        job = self.pending.pop(job_id, None)
        if job is not None:
            self._finish(job, result)
        elif job_id in self.finished:
            self.finished[job_id] += 1
            self.finished.move_to_end(job_id)
            if self.finished[job_id] == 2:
                self.doubled += 1
                self.doubled_ids.append(job_id)
        else:
            self.early.setdefault(job_id, []).append(result)

    def _finish(self, job: Accepted, result: ResultSeen) -> None:
        done = result.outcome == "completed"
        self.completed += done
        self.failed += not done
        self.finished[job.job_id] = 1
        self.timeline.outcome(result.at, done, max(0.0, result.at - job.at))

    def view(self, now: float) -> AuditView:
        """The audit's figures at `now`."""
        lost = [j.job_id for j in self.pending.values() if now - j.at > self.lost_after_s]
        return AuditView(
            accepted=self.accepted,
            completed=self.completed,
            failed=self.failed,
            in_flight=len(self.pending) - len(lost),
            lost=len(lost) + self.expired,
            doubled=self.doubled,
            dead_lettered=self.dead_lettered,
            lost_ids=tuple(sorted(lost)[:SHOWN_IDS]),
            doubled_ids=tuple(sorted(self.doubled_ids)),
            forgotten=self.forgotten,
        )
