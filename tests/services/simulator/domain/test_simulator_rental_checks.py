"""The rental checks: overlapping leases per house, and events against the database's outbox."""

from __future__ import annotations

from datetime import date

from simulator.domain.audit import EventSeen
from simulator.domain.rental_checks import event_mismatches, overlapping

LISTED = "quartet.rental.HouseListed.v1"
SIGNED = "quartet.rental.LeaseSigned.v1"


def event(ce_id: str, ce_type: str = LISTED, key: str = "h1", **data: str) -> EventSeen:
    return EventSeen("rental.events", 0, 0, ce_id, ce_type, None, key, data, 0.0)


def test_leases_that_share_a_day_overlap() -> None:
    leases = [
        ("a", "h1", date(2026, 1, 1), date(2026, 6, 30)),
        ("b", "h1", date(2026, 6, 30), date(2026, 12, 31)),
        ("c", "h2", date(2026, 1, 1), date(2026, 12, 31)),
    ]
    assert overlapping(leases) == ["house h1: lease a overlaps lease b from 2026-06-30"]


def test_back_to_back_leases_do_not_overlap() -> None:
    leases = [
        ("a", "h1", date(2026, 1, 1), date(2026, 6, 30)),
        ("b", "h1", date(2026, 7, 1), date(2026, 12, 31)),
        ("c", "h1", date(2027, 1, 1), date(2027, 1, 1)),
    ]
    assert overlapping(leases) == []


def test_a_long_lease_overlapping_a_later_one_is_found_past_a_short_one() -> None:
    leases = [
        ("long", "h1", date(2026, 1, 1), date(2026, 12, 31)),
        ("short", "h1", date(2026, 2, 1), date(2026, 2, 28)),
        ("late", "h1", date(2026, 11, 1), date(2027, 3, 1)),
    ]
    found = overlapping(leases)
    assert len(found) == 2 and all("lease long" in f for f in found)


def test_events_matching_the_outbox_and_the_journeys_pass() -> None:
    outbox = {"e1": (LISTED, "h1", True), "e2": (SIGNED, "h1", True)}
    events = [event("e1", house_id="h1"), event("e2", SIGNED, lease_id="l1"), event("e2", SIGNED, lease_id="l1")]
    expected = [(LISTED, "house_id", "h1"), (SIGNED, "lease_id", "l1")]
    # A relayed copy of the same row (same ce_id) is what consumers dedupe: not a mismatch.
    assert event_mismatches(outbox, events, expected) == []


def test_an_unsent_or_lost_outbox_row_is_a_mismatch() -> None:
    outbox = {"e1": (LISTED, "h1", False), "e2": (LISTED, "h2", True)}
    found = event_mismatches(outbox, [], [])
    assert found == [
        f"outbox row e1 ({LISTED}) never sent",
        f"outbox row e2 ({LISTED}) sent but not on the topic",
    ]


def test_an_event_without_an_outbox_row_is_a_mismatch() -> None:
    assert event_mismatches({}, [event("ghost")], []) == [f"event ghost ({LISTED}) on the topic has no outbox row"]


def test_an_event_that_differs_from_its_row_is_a_mismatch() -> None:
    found = event_mismatches({"e1": (LISTED, "h1", True)}, [event("e1", SIGNED, "h9")], [])
    assert found == [f"event e1 is {SIGNED} keyed h9, the outbox row {LISTED} keyed h1"]


def test_a_change_a_journey_made_needs_its_event() -> None:
    found = event_mismatches({}, [], [(SIGNED, "lease_id", "l7")])
    assert found == [f"no {SIGNED} event with lease_id l7"]
