"""Garbage for the jobs topics: raw bytes, CloudEvents whose data is not JSON, and schema-invalid jobs.

Each message is keyed by its own garbage key: a dead letter keeps the original key, which is how the
audit finds every piece of garbage in the right dead-letter topic.
"""

from __future__ import annotations

import json

import numpy as np

from simulator.domain.scenario import GarbageFlavour

SOURCE = "/quartet/simulator"


def garbage_message(
    flavour: GarbageFlavour, key: str, ce_type: str, seed: int, time_iso: str
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """(value, headers) of one garbage message; `ce_type` is the jobs topic's request type."""
    rng = np.random.default_rng(seed)
    if flavour == "bytes":
        # No CloudEvents headers at all, and bytes that are not UTF-8 text.
        return bytes(rng.integers(0, 256, size=int(rng.integers(8, 256)), dtype=np.uint8)), []
    headers = [
        ("ce_id", key.encode()),
        ("ce_source", SOURCE.encode()),
        ("ce_type", ce_type.encode()),
        ("ce_specversion", b"1.0"),
        ("ce_time", time_iso.encode()),
        ("content-type", b"application/json"),
    ]
    if flavour == "not_json":
        return b'{"truncated": ' + bytes(rng.integers(97, 123, size=16, dtype=np.uint8)), headers
    # A JSON object the job schema rejects: keys it does not know and a seed of the wrong type.
    body = {"garbage": True, "seed": "not-a-number", "nonce": int(rng.integers(0, 2**31))}
    return json.dumps(body).encode(), headers
