"""The generated AsyncAPI 3.0 document is structurally valid and describes every registered message."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel, Field
from quartet_contracts.asyncapi import (
    CONTRACT_OPERATIONS,
    HEADERS_SCHEMA,
    PAYLOAD_SCHEMA_FORMAT,
    build_document,
    message_key,
    to_json,
    to_yaml,
)
from quartet_contracts.envelope import Envelope
from quartet_contracts.registry import EventType, Message, all_types
from quartet_contracts.topics import CORE_TOPICS, TopicSpec, expand
from quartet_shared.settings import KernelSettings

COMPONENT_KEY = r"^[A-Za-z0-9.\-_]+$"
REF = {"type": "object", "required": ["$ref"], "properties": {"$ref": {"type": "string", "pattern": "^#/"}}}

# The parts of the AsyncAPI 3.0.0 specification's structure this generator uses, as a JSON Schema.
ASYNCAPI_3_SHAPE: dict[str, Any] = {
    "type": "object",
    "required": ["asyncapi", "info"],
    "properties": {
        "asyncapi": {"const": "3.0.0"},
        "id": {"type": "string", "format": "uri"},
        "info": {
            "type": "object",
            "required": ["title", "version"],
            "properties": {"title": {"type": "string"}, "version": {"type": "string"}},
        },
        "defaultContentType": {"type": "string"},
        "servers": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["host", "protocol"],
                "properties": {"host": {"type": "string"}, "protocol": {"type": "string"}},
            },
        },
        "channels": {
            "type": "object",
            "propertyNames": {"pattern": COMPONENT_KEY},
            "additionalProperties": {
                "type": "object",
                "required": ["address"],
                "properties": {
                    "address": {"type": ["string", "null"]},
                    "description": {"type": "string"},
                    "messages": {"type": "object", "additionalProperties": REF},
                    "bindings": {"type": "object"},
                },
            },
        },
        "operations": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["action", "channel"],
                "properties": {
                    "action": {"enum": ["send", "receive"]},
                    "channel": REF,
                    "messages": {"type": "array", "items": REF},
                },
            },
        },
        "components": {
            "type": "object",
            "properties": {
                "schemas": {"type": "object", "propertyNames": {"pattern": COMPONENT_KEY}},
                "messages": {
                    "type": "object",
                    "propertyNames": {"pattern": COMPONENT_KEY},
                    "additionalProperties": {
                        "type": "object",
                        "required": ["payload", "headers", "name"],
                        "properties": {
                            "payload": {
                                "type": "object",
                                "required": ["schemaFormat", "schema"],
                                "properties": {"schemaFormat": {"type": "string"}, "schema": {"type": "object"}},
                            },
                            "headers": {"type": "object"},
                            "contentType": {"type": "string"},
                        },
                    },
                },
            },
        },
    },
}


class Ping(Message):
    """A tiny message only these tests use."""

    n: int = Field(ge=0)
    label: str | None = None
    pair: tuple[int, str] | None = None


class Nested(BaseModel):
    """Holds a Ping, so the payload schema has $defs."""

    ping: Ping
    tags: list[str] = Field(default_factory=list)


PING = EventType("quartet.test.Ping.v1", Ping, "test.ping", "A tiny message only these tests use.")
NESTED = EventType("quartet.test.Nested.v1", Nested, "training.jobs", "Holds a Ping.")


def resolve(document: dict[str, Any], ref: str) -> Any:
    """Follow a local JSON pointer in the document."""
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The document for whatever schemas are registered now."""
    return build_document()


def test_document_has_the_asyncapi_3_shape(document: dict[str, Any]) -> None:
    jsonschema.validate(document, ASYNCAPI_3_SHAPE, format_checker=jsonschema.FormatChecker())
    assert document["asyncapi"] == "3.0.0"
    assert document["servers"]["kafka"]["protocol"] == "kafka"


def test_every_registered_type_has_a_channel_and_a_message(document: dict[str, Any]) -> None:
    types = all_types()
    addresses = {c["address"]: c for c in document["channels"].values()}
    for event in types:
        channel = addresses[event.topic]
        key = message_key(event)
        assert channel["messages"][key] == {"$ref": f"#/components/messages/{key}"}
        message = document["components"]["messages"][key]
        assert message["name"] == event.ce_type
        assert message["payload"]["schemaFormat"] == PAYLOAD_SCHEMA_FORMAT
        jsonschema.Draft202012Validator.check_schema(message["payload"]["schema"])
    assert len(document["components"]["messages"]) == len(types)


def test_every_core_topic_is_a_channel_with_its_description(document: dict[str, Any]) -> None:
    addresses = {c["address"]: c for c in document["channels"].values()}
    for spec in expand(CORE_TOPICS):
        assert addresses[spec.name]["description"].startswith(spec.description)
        binding = addresses[spec.name]["bindings"]["kafka"]
        assert binding["topic"] == spec.name
        assert binding["partitions"] == (spec.partitions or 6)
    assert "dlq_error_type" in addresses["training.jobs.dlq"]["description"]
    assert addresses["training.control"]["bindings"]["kafka"]["partitions"] == 1


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    for channel in document["channels"].values():
        for ref in channel["messages"].values():
            assert resolve(document, ref["$ref"])["payload"]
    for op_id, op in document["operations"].items():
        channel = resolve(document, op["channel"]["$ref"])
        for ref in op["messages"]:
            assert ref["$ref"].startswith(op["channel"]["$ref"] + "/messages/"), op_id
            assert resolve(document, ref["$ref"]) in channel["messages"].values()
    for message in document["components"]["messages"].values():
        assert resolve(document, message["headers"]["allOf"][0]["$ref"]) is not None


def test_operations_follow_the_contract_table(document: dict[str, Any]) -> None:
    ops = document["operations"]
    assert ops["training-worker.receive.training.jobs"]["action"] == "receive"
    assert ops["training-worker.send.training.results"]["action"] == "send"
    assert ops["path-planner.receive.planning.jobs"]["channel"] == {"$ref": "#/channels/planning.jobs"}
    assert ops["rental-manager.send.rental.events"]["action"] == "send"
    assert ops["simulator.receive.rental.events"]["action"] == "receive"
    assert len(ops) == len(CONTRACT_OPERATIONS)


def test_headers_schema_accepts_real_envelopes_and_pins_each_type() -> None:
    document = build_document(types=[PING])
    message = document["components"]["messages"][message_key(PING)]
    base = document["components"]["schemas"][HEADERS_SCHEMA]
    jsonschema.Draft7Validator.check_schema(base)
    headers_schema = {"allOf": [base, message["headers"]["allOf"][1]]}
    env = Envelope(
        type=PING.ce_type,
        source="/tests",
        data={"n": 1},
        subject="job-1",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    _, _, raw_headers = env.to_kafka()
    headers = {k: v.decode() for k, v in raw_headers}
    jsonschema.validate(headers, headers_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**headers, "ce_type": "quartet.test.Other.v1"}, headers_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({k: v for k, v in headers.items() if k != "ce_id"}, headers_schema)


def test_payload_schemas_validate_what_the_models_accept() -> None:
    document = build_document(types=[PING, NESTED], topics=expand(CORE_TOPICS))
    nested = document["components"]["messages"][message_key(NESTED)]["payload"]["schema"]
    ping = document["components"]["messages"][message_key(PING)]["payload"]["schema"]
    good = Nested(ping=Ping(n=2, pair=(1, "a")), tags=["x"]).model_dump(mode="json")
    jsonschema.Draft202012Validator(nested).validate(good)
    jsonschema.Draft202012Validator(ping).validate({"n": 0})
    for bad in ({"n": -1}, {"n": 1, "extra": True}, {"n": 1, "pair": [1, 2]}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft202012Validator(ping).validate(bad)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(nested).validate({"ping": {"n": "many"}})
    # A type on a topic the registry does not list still gets a channel of its own.
    channel = document["channels"]["test.ping"]
    assert channel["address"] == "test.ping"
    assert channel["description"] == PING.description
    assert document["channels"]["training.jobs"]["messages"] == {
        message_key(NESTED): {"$ref": f"#/components/messages/{message_key(NESTED)}"}
    }
    kafka = document["components"]["messages"][message_key(NESTED)]["bindings"]["kafka"]
    assert kafka["key"] == {"type": "string", "description": "job id"}


def test_document_with_no_types_is_still_valid() -> None:
    document = build_document(types=[], topics=[TopicSpec("only.topic", "The only topic.")])
    jsonschema.validate(document, ASYNCAPI_3_SHAPE)
    assert document["channels"]["only.topic"]["messages"] == {}
    assert document["operations"] == {}
    assert document["components"]["messages"] == {}


def test_json_and_yaml_say_the_same(document: dict[str, Any]) -> None:
    from_json = json.loads(to_json(document))
    from_yaml = yaml.safe_load(to_yaml(document))
    assert from_json == from_yaml == json.loads(json.dumps(document))


def test_settings_shape_the_bindings() -> None:
    cfg = KernelSettings(kafka_bootstrap_servers="broker-a:9093,broker-b:9093", topic_partitions=12)
    document = build_document(cfg, types=[])
    assert document["servers"]["kafka"]["host"] == "broker-a:9093"
    assert document["channels"]["training.jobs"]["bindings"]["kafka"]["partitions"] == 12
