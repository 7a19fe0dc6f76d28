"""The rental checks as pure functions: overlapping leases, and events against the committed outbox rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from simulator.domain.audit import EventSeen


def overlapping(leases: list[tuple[str, str, date, date]]) -> list[str]:
    """Pairs of leases of one house whose [start, end] days overlap."""
    by_house: dict[str, list[tuple[date, date, str]]] = {}
    for lease_id, house, start, end in leases:
        by_house.setdefault(house, []).append((start, end, lease_id))
    out = []
    for house, periods in sorted(by_house.items()):
        periods.sort()
        latest_end, latest_id = None, ""
        for start, end, lease_id in periods:
            if latest_end is not None and start <= latest_end:
                out.append(f"house {house}: lease {latest_id} overlaps lease {lease_id} from {start}")
            if latest_end is None or end > latest_end:
                latest_end, latest_id = end, lease_id
    return out


def event_mismatches(
    outbox: Mapping[str, tuple[str, str, bool]],
    events: list[EventSeen],
    expected: list[tuple[str, str, str]],
    exactly_once: Sequence[tuple[str, str, str]] = (),
) -> list[str]:
    """Where the events on the topic and the committed outbox rows disagree, or a journey's change has no event.

    Every outbox row of the run must be on the topic (same id, type and key); every event on the topic must be
    a committed outbox row (an event's `ce_id` is its row's id); every state change a journey saw the API make
    must have its event, and each change `exactly_once` names (a command published more than once) exactly one
    (copies of one row, same `ce_id`, count once: consumers dedupe them). A row the relay has not sent by the end
    of settling is reported too.
    """
    out: list[str] = []
    seen: dict[str, EventSeen] = {}
    for e in events:
        seen.setdefault(e.ce_id, e)
    for row_id, (ce_type, key, sent) in sorted(outbox.items()):
        event = seen.get(row_id)
        if event is None:
            out.append(f"outbox row {row_id} ({ce_type}) {'sent but not on the topic' if sent else 'never sent'}")
        elif event.ce_type != ce_type or (event.key or "") != key:
            out.append(f"event {row_id} is {event.ce_type} keyed {event.key}, the outbox row {ce_type} keyed {key}")
    for ce_id, event in sorted(seen.items()):
        if ce_id not in outbox:
            out.append(f"event {ce_id} ({event.ce_type}) on the topic has no outbox row")
    index = {(e.ce_type, str(v)) for e in events for v in e.data.values() if isinstance(v, str)}
    for ce_type, field_name, value in expected:
        if (ce_type, value) not in index:
            out.append(f"no {ce_type} event with {field_name} {value}")
    for ce_type, field_name, value in exactly_once:
        count = sum(1 for e in seen.values() if e.ce_type == ce_type and str(e.data.get(field_name)) == value)
        if count != 1:
            out.append(f"{count} {ce_type} events with {field_name} {value}, expected exactly one")
    return out
