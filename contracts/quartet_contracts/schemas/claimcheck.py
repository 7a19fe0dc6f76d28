"""The claim-check of job results: large parts stored beside the job, the result event carrying a reference.

A completed event keeps a bounded summary (metrics, costs, names of figures) and a `ResultRef` to one JSON
document holding the parts whose size grows with the spec (histories, weights, paths, fitness curves);
`merge_parts` puts the two back together into the whole result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import Field

from quartet_contracts.registry import Message

PARTS_ARTIFACT = "result-parts.json"
PARTS_CONTENT_TYPE = "application/json"


class ResultRef(Message):
    """Where a result's large parts are stored: the job's artifact `name`, its sha256 and its size in bytes."""

    name: str = Field(min_length=1, max_length=200)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    content_type: str = PARTS_CONTENT_TYPE


def encode_parts(parts: Mapping[str, Any]) -> tuple[bytes, ResultRef]:
    """The parts as canonical JSON (sorted keys, so a re-run stores the same bytes) and their reference."""
    data = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    return data, ResultRef(name=PARTS_ARTIFACT, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def decode_parts(data: bytes, ref: ResultRef) -> dict[str, Any]:
    """The parts stored under `ref`; ValueError if the bytes are not the ones it names."""
    if len(data) != ref.size or hashlib.sha256(data).hexdigest() != ref.sha256:
        raise ValueError(f"stored {ref.name} does not match its reference (sha256 {ref.sha256[:12]}…)")
    parts = orjson.loads(data)
    if not isinstance(parts, dict):
        raise ValueError(f"stored {ref.name} is not a JSON object")
    return parts


def merge_parts(summary: Mapping[str, Any], parts: Mapping[str, Any]) -> dict[str, Any]:
    """The whole result: `parts` laid over `summary`, objects merged by key and equal-length lists by index."""
    whole = dict(summary)
    for key, value in parts.items():
        whole[key] = _merge(whole.get(key), value)
    return whole


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, Mapping) and isinstance(over, Mapping):
        return merge_parts(base, over)
    pairs = list(zip(base, over, strict=True)) if _lists_of_equal_length(base, over) else []
    if pairs and all(isinstance(b, Mapping) and isinstance(o, Mapping) for b, o in pairs):
        return [merge_parts(b, o) for b, o in pairs]
    return over


def _lists_of_equal_length(base: Any, over: Any) -> bool:
    return isinstance(base, list) and isinstance(over, list) and len(base) == len(over)


def take(data: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """Remove the non-empty values of `keys` from `data` and return them (the parts of a split)."""
    return {key: data.pop(key) for key in keys if data.get(key) not in (None, [], {})}


__all__ = [
    "PARTS_ARTIFACT",
    "PARTS_CONTENT_TYPE",
    "ResultRef",
    "decode_parts",
    "encode_parts",
    "merge_parts",
    "take",
]
