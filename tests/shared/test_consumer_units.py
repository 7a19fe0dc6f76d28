"""Pieces of the consumer runner that need no broker."""

from __future__ import annotations

from quartet_shared.consumer import KERNEL_HEADERS, backoff_delay, original_headers


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_delay(a, 0.2, 1.0) for a in range(1, 6)] == [0.2, 0.4, 0.8, 1.0, 1.0]


def test_replays_strip_every_kernel_header_and_keep_the_originals() -> None:
    headers = [
        ("ce_id", b"1"),
        ("traceparent", b"t"),
        *((h, b"x") for h in sorted(KERNEL_HEADERS)),
        ("dlq_via_topic", b"t.retry"),
    ]
    assert original_headers(headers) == [("ce_id", b"1"), ("traceparent", b"t")]
