"""Garbage is garbage by the kernel's own rules: undecodable bytes, data that is not JSON, a job the schema refuses."""

from __future__ import annotations

import pytest
from quartet_contracts.envelope import EnvelopeError, SchemaError, decode
from quartet_contracts.registry import ce_type_of
from quartet_contracts.schemas.planning import PlanRequested
from quartet_contracts.schemas.training import TrainingRequested
from simulator.domain.garbage import garbage_message

TIME = "2026-01-01T00:00:00+00:00"


def test_bytes_have_no_cloudevents_headers() -> None:
    value, headers = garbage_message("bytes", "g1", ce_type_of(TrainingRequested), 5, TIME)
    assert headers == [] and value
    with pytest.raises(EnvelopeError, match="missing CloudEvents headers"):
        decode(b"g1", value, headers)


def test_not_json_has_headers_but_unreadable_data() -> None:
    value, headers = garbage_message("not_json", "g2", ce_type_of(TrainingRequested), 5, TIME)
    assert dict(headers)["ce_id"] == b"g2"
    with pytest.raises(EnvelopeError, match="not JSON"):
        decode(b"g2", value, headers)


@pytest.mark.parametrize("model", [TrainingRequested, PlanRequested])
def test_schema_garbage_decodes_but_fails_the_job_schema(model: type[TrainingRequested] | type[PlanRequested]) -> None:
    value, headers = garbage_message("schema", "g3", ce_type_of(model), 5, TIME)
    envelope = decode(b"g3", value, headers)
    assert envelope.id == "g3" and envelope.type == ce_type_of(model)
    with pytest.raises(SchemaError):
        envelope.parse(model)


def test_the_same_seed_gives_the_same_garbage() -> None:
    assert garbage_message("bytes", "k", "t", 9, TIME) == garbage_message("bytes", "k", "t", 9, TIME)
    assert garbage_message("bytes", "k", "t", 9, TIME) != garbage_message("bytes", "k", "t", 10, TIME)
