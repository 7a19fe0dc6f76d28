"""The audit's anomalies under Jepsen's names: lost, duplicated, unexpected, aborted read, out of order.

Pure functions of what the read_committed collector saw. An *aborted read* needs to know which records were
never committed: the run writes probe records inside transactions it never commits (`simulator.probes`), so
every probe id is known aborted, and a probe the collector reads is an aborted read. *Out of order* is per key:
walking a key's records in the order the collector read them, an offset that goes backwards within a partition,
or an event time (`ce_time`, the producer's sequence: a result's making, an outbox row's creation) that goes
backwards, is one anomaly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

SAMPLE = 50


@dataclass(frozen=True)
class KeyedRecord:
    """One record as the collector read it, for the per-key order: where it sits and its producer's time."""

    key: str
    topic: str
    partition: int
    offset: int
    time: float | None


class Anomalies(BaseModel):
    """How many of each anomaly the run showed, with the first ids (or descriptions) of each."""

    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    aborted_read: int = 0
    out_of_order: int = 0
    aborted_written: int = Field(default=0, description="Probe records written in transactions never committed.")
    aborted_read_ids: list[str] = Field(default_factory=list)
    out_of_order_keys: list[str] = Field(default_factory=list)


def aborted_reads(read_ids: Iterable[str], aborted_ids: Iterable[str]) -> list[str]:
    """The ids read by the read_committed collector that were written only in transactions never committed."""
    aborted = set(aborted_ids)
    return sorted({i for i in read_ids if i in aborted})


def out_of_order(records: Sequence[KeyedRecord]) -> list[str]:
    """Per key, in read order: each record whose offset (same partition) or time goes back from the one before."""
    last: dict[str, KeyedRecord] = {}
    found: list[str] = []
    for rec in records:
        before = last.get(rec.key)
        last[rec.key] = rec
        if before is None:
            continue
        same_partition = (before.topic, before.partition) == (rec.topic, rec.partition)
        if same_partition and rec.offset <= before.offset:
            where = f"{rec.topic}-{rec.partition}"
            found.append(f"key {rec.key}: offset {rec.offset} read after {before.offset} on {where}")
        elif rec.time is not None and before.time is not None and rec.time < before.time:
            found.append(
                f"key {rec.key}: time {rec.time:.3f} after {before.time:.3f} ({rec.topic}-{rec.partition}@{rec.offset})"
            )
    return found
