"""CloudEvents binary mode: what goes out, what comes back, and what is refused."""

from __future__ import annotations

import pytest
from quartet_shared.envelope import Envelope, EnvelopeError, SchemaError, decode
from quartet_shared.registry import Message, event_type


@event_type("quartet.test.Greeting.v1", topic="test.greetings")
class Greeting(Message):
    """A test greeting."""

    name: str
    times: int = 1


def test_binary_mode_headers_and_round_trip() -> None:
    env = Envelope.of(
        Greeting(name="ada"),
        source="/tests",
        subject="job-1",
        key="job-1",
        traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01",
    )
    key, value, headers = env.to_kafka()
    h = dict(headers)
    assert key == b"job-1"
    assert h["ce_type"] == b"quartet.test.Greeting.v1"
    assert h["ce_specversion"] == b"1.0"
    assert h["ce_id"] == env.id.encode()
    assert h["ce_subject"] == b"job-1"
    assert h["content-type"] == b"application/json"
    assert h["ce_time"].endswith(b"Z")
    assert h["traceparent"].startswith(b"00-")
    back = decode(key, value, headers)
    assert back.parse() == Greeting(name="ada")
    assert (back.id, back.subject, back.key, back.traceparent) == (env.id, "job-1", "job-1", env.traceparent)


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (b"{}", [], "missing CloudEvents headers"),
        (b"{}", [("ce_id", b"1"), ("ce_source", b"/x"), ("ce_type", b"t"), ("ce_specversion", b"0.3")], "specversion"),
        (
            b"{}",
            [
                ("ce_id", b"1"),
                ("ce_source", b"/x"),
                ("ce_type", b"t"),
                ("ce_specversion", b"1.0"),
                ("content-type", b"text/xml"),
            ],
            "content-type",
        ),
        (
            b"[1, 2]",
            [("ce_id", b"1"), ("ce_source", b"/x"), ("ce_type", b"t"), ("ce_specversion", b"1.0")],
            "JSON object",
        ),
        (
            b"\xff\xfe",
            [("ce_id", b"1"), ("ce_source", b"/x"), ("ce_type", b"t"), ("ce_specversion", b"1.0")],
            "unreadable|JSON object",
        ),
    ],
)
def test_bad_records_are_refused_with_a_reason(value: bytes, headers: list[tuple[str, bytes]], reason: str) -> None:
    with pytest.raises(EnvelopeError, match=reason):
        decode(None, value, headers)


def test_schema_errors_name_the_field_and_unknown_types_are_schema_errors() -> None:
    bad = Envelope(type="quartet.test.Greeting.v1", source="/x", data={"name": "x", "times": "many"})
    with pytest.raises(SchemaError, match="times"):
        bad.parse()
    extra = Envelope(type="quartet.test.Greeting.v1", source="/x", data={"name": "x", "colour": "red"})
    with pytest.raises(SchemaError, match="colour"):
        extra.parse()
    with pytest.raises(SchemaError, match="no schema is registered"):
        Envelope(type="quartet.nope.Nothing.v1", source="/x", data={}).parse()
