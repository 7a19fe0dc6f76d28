"""The console's view models: pure functions of what the feed collected and the job services answered (the
live audit's counting rules are in `tally`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from quartet_shared.dlq import DeadLetter

FINISHED = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True)
class Accepted:
    """A job request committed on a jobs topic."""

    job_id: str
    kind: str
    at: float


@dataclass(frozen=True)
class AuditView:
    """The live audit's figures."""

    accepted: int = 0
    completed: int = 0
    failed: int = 0
    in_flight: int = 0
    lost: int = 0
    doubled: int = 0
    dead_lettered: int = 0
    lost_ids: tuple[str, ...] = ()
    doubled_ids: tuple[str, ...] = ()
    forgotten: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class JobRow:
    """A job as the console lists it."""

    id: str
    kind: str
    status: str
    percent: int
    created_at: str
    finished: bool
    problem: str | None = None

    @classmethod
    def of(cls, kind: str, job: Mapping[str, Any]) -> JobRow:
        """A row from a job service's `JobPublic` JSON."""
        status = str(job.get("status", "unknown"))
        # A finished job's bar is full whatever its last progress event said.
        progress = 1.0 if status == "succeeded" else float(job.get("progress") or 0.0)
        problem = job.get("problem") or None
        return cls(
            id=str(job["id"]),
            kind=kind,
            status=status,
            percent=max(0, min(100, round(progress * 100))),
            created_at=str(job.get("created_at", ""))[:19].replace("T", " "),
            finished=status in FINISHED,
            problem=problem_text(problem) if problem else None,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def problem_text(problem: Mapping[str, Any]) -> str:
    """An RFC 9457 problem as one line: title, then detail."""
    title = str(problem.get("title") or "Problem")
    detail = problem.get("detail")
    return f"{title}: {detail}" if detail else title


def newest_first(rows: Iterable[JobRow], limit: int) -> list[JobRow]:
    """The `limit` most recent rows of every kind."""
    return sorted(rows, key=lambda r: r.created_at, reverse=True)[:limit]


@dataclass(frozen=True)
class Health:
    """Whether the console's sources answer, each with the reason when not."""

    kafka: str | None = None
    redis: str | None = None
    jobs: Mapping[str, str] = field(default_factory=dict)
    audit: str | None = None

    @property
    def notices(self) -> list[str]:
        """What the page says is down, one sentence per part."""
        out = []
        if self.kafka:
            out.append(f"Kafka is down: {self.kafka}")
        if self.redis:
            out.append(f"Redis is down: {self.redis}")
        if self.audit:
            out.append(f"The live audit is not collecting yet: {self.audit}")
        return out + [f"The {kind} API is down: {why}" for kind, why in sorted(self.jobs.items())]


_HIDDEN = frozenset({"job_id", "spec_hash", "result_ref", "plots"})
MAX_FACTS = 16


def _shown(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def result_facts(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A result's headline figures: its scalar fields, and one level of named numbers (metrics) beside them."""
    facts: list[tuple[str, str]] = []
    for name, value in result.items():
        if name in _HIDDEN:
            continue
        if isinstance(value, str | int | float | bool):
            facts.append((name, _shown(value)))
        elif isinstance(value, Mapping) and value and all(isinstance(v, int | float) for v in value.values()):
            facts += [(f"{name}.{k}", _shown(v)) for k, v in value.items()]
    return facts[:MAX_FACTS]


@dataclass(frozen=True)
class TopicState:
    """A topic at a moment: its partitions and the sum of their end offsets."""

    name: str
    partitions: int
    end: int


@dataclass(frozen=True)
class GroupState:
    """A consumer group at a moment: its state, members, committed offsets (summed) and lag on its topics."""

    group: str
    state: str
    members: tuple[str, ...]
    topics: tuple[str, ...]
    committed: int
    lag: int


@dataclass(frozen=True)
class ClusterSample:
    """The topics and consumer groups as the broker described them at `at`."""

    at: float
    topics: tuple[TopicState, ...] = ()
    groups: tuple[GroupState, ...] = ()


@dataclass(frozen=True)
class TopicRow:
    """A topic as the topology page shows it, with its produce rate since the previous sample."""

    name: str
    partitions: int
    end: int
    produced_per_s: float | None


@dataclass(frozen=True)
class GroupRow:
    """A consumer group as the topology page shows it, with its consume rate since the previous sample."""

    group: str
    state: str
    members: tuple[str, ...]
    topics: tuple[str, ...]
    lag: int
    consumed_per_s: float | None


def _rate(now: int, before: int | None, seconds: float) -> float | None:
    if before is None or seconds <= 0:
        return None
    return round(max(0, now - before) / seconds, 2)


def topology(previous: ClusterSample | None, current: ClusterSample) -> tuple[list[TopicRow], list[GroupRow]]:
    """Topic and group rows, with rates from the difference between two samples (None with only one)."""
    seconds = current.at - previous.at if previous is not None else 0.0
    ends = {t.name: t.end for t in previous.topics} if previous is not None else {}
    done = {g.group: g.committed for g in previous.groups} if previous is not None else {}
    topics = [TopicRow(t.name, t.partitions, t.end, _rate(t.end, ends.get(t.name), seconds)) for t in current.topics]
    groups = [
        GroupRow(g.group, g.state, g.members, g.topics, g.lag, _rate(g.committed, done.get(g.group), seconds))
        for g in current.groups
    ]
    return sorted(topics, key=lambda t: t.name), sorted(groups, key=lambda g: g.group)


@dataclass(frozen=True)
class LetterRow:
    """A dead letter: where it sits, where it came from, and why it was set aside."""

    partition: int
    offset: int
    key: str | None
    ce_type: str | None
    error_type: str
    error_message: str
    original: str
    attempts: str


@dataclass(frozen=True)
class DeadLetterTopic:
    """One dead-letter topic: how many letters, how many for each reason, and the newest letters."""

    topic: str
    count: int
    reasons: tuple[tuple[str, int], ...]
    letters: tuple[LetterRow, ...]


def letter_row(letter: DeadLetter) -> LetterRow:
    """A row from a dead letter's coordinates and its `dlq_*` headers."""
    reason = letter.reason
    where = reason.get("dlq_original_topic", "?")
    if "dlq_original_partition" in reason:
        where += f"[{reason['dlq_original_partition']}]"
    if "dlq_original_offset" in reason:
        where += f"@{reason['dlq_original_offset']}"
    return LetterRow(
        partition=letter.partition,
        offset=letter.offset,
        key=letter.key,
        ce_type=letter.ce_type,
        error_type=reason.get("dlq_error_type", "unknown"),
        error_message=reason.get("dlq_error_message", "")[:300],
        original=where,
        attempts=reason.get("dlq_attempts", "?"),
    )


def dead_letter_topic(topic: str, rows: Sequence[LetterRow], shown: int) -> DeadLetterTopic:
    """A topic's count, its reasons by frequency, and its `shown` newest letters."""
    reasons: dict[str, int] = {}
    for row in rows:
        reasons[row.error_type] = reasons.get(row.error_type, 0) + 1
    ordered = tuple(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
    return DeadLetterTopic(topic, len(rows), ordered, tuple(rows[-shown:][::-1]))
