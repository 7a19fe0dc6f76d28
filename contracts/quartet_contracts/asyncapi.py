"""The AsyncAPI 3.0 document of Quartet's messages, generated from the schema and topic registries.

Payload schemas come straight from the pydantic models. Pydantic emits JSON Schema 2020-12 (`$defs`,
`prefixItems`), so each payload is a Multi Format Schema Object that says so, and each is self-contained
(its `$defs` inside it, an `$id` of its own) so it can be checked on its own by any JSON Schema validator.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Protocol

import yaml

from quartet_contracts.registry import EventType, all_types
from quartet_contracts.topics import (
    CORE_TOPICS,
    DLQ_SUFFIX,
    RETRY_SUFFIX,
    LocalTopicDefaults,
    TopicDefaults,
    TopicSpec,
    expand,
)

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
PAYLOAD_SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"
HEADERS_SCHEMA = "CloudEventsKafkaHeaders"


@dataclass(frozen=True)
class Operation:
    """One service sending to or receiving from one topic, as the contract's table says."""

    service: str
    action: str
    topic: str
    summary: str


# The contract's table of parts: who consumes and who produces which topic. The job APIs of the two
# workers also publish jobs and cancellations, because a 202 means the broker already has the job.
CONTRACT_OPERATIONS: tuple[Operation, ...] = (
    Operation("training-worker", "receive", "training.jobs", "Run training jobs."),
    Operation("training-worker", "receive", "training.control", "Stop cancelled training jobs."),
    Operation("training-worker", "send", "training.progress", "Report per-epoch progress."),
    Operation("training-worker", "send", "training.results", "Publish exactly one outcome per job."),
    Operation("training-worker", "send", "training.jobs", "Accept jobs from POST /jobs."),
    Operation("training-worker", "send", "training.control", "Request cancellation from DELETE /jobs/{id}."),
    Operation("path-planner", "receive", "planning.jobs", "Run path-planning jobs."),
    Operation("path-planner", "receive", "planning.control", "Stop cancelled planning jobs."),
    Operation("path-planner", "send", "planning.progress", "Report per-iteration progress."),
    Operation("path-planner", "send", "planning.results", "Publish exactly one outcome per job."),
    Operation("path-planner", "send", "planning.jobs", "Accept jobs from POST /jobs."),
    Operation("path-planner", "send", "planning.control", "Request cancellation from DELETE /jobs/{id}."),
    Operation("rental-manager", "receive", "rental.commands", "Apply rental commands (deduplicated in an inbox)."),
    Operation("rental-manager", "send", "rental.events", "Relay state changes from the transactional outbox."),
    Operation("simulator", "receive", "training.results", "Audit training outcomes."),
    Operation("simulator", "receive", "planning.results", "Audit planning outcomes."),
    Operation("simulator", "receive", "rental.events", "Audit rental state changes."),
    Operation("simulator", "send", "training.jobs", "Generate training jobs."),
    Operation("simulator", "send", "planning.jobs", "Generate planning jobs."),
    Operation("simulator", "send", "rental.commands", "Generate rental commands."),
)


class DocumentSettings(TopicDefaults, Protocol):
    """What the document takes from a deployment's settings (the runtime's KernelSettings fit)."""

    @property
    def kafka_bootstrap_servers(self) -> str: ...


@dataclass(frozen=True)
class LocalDocumentSettings(LocalTopicDefaults):
    """A single local broker's settings, for the document generated without a running system."""

    kafka_bootstrap_servers: str = "127.0.0.1:9092"


def headers_schema() -> dict[str, Any]:
    """The CloudEvents 1.0 Kafka binary-mode headers every Quartet message carries."""
    return {
        "type": "object",
        "description": "CloudEvents 1.0 attributes in Kafka binary content mode, plus W3C trace context.",
        "required": ["ce_id", "ce_source", "ce_type", "ce_specversion", "content-type"],
        "properties": {
            "ce_id": {
                "type": "string",
                "minLength": 1,
                "description": "Event id and idempotency key; on a jobs topic it is the job id.",
            },
            "ce_source": {"type": "string", "minLength": 1, "description": "URI reference of the producer."},
            "ce_type": {"type": "string", "description": "Schema name and version, e.g. quartet.x.Y.v1."},
            "ce_specversion": {"type": "string", "const": "1.0"},
            "ce_time": {"type": "string", "format": "date-time", "description": "When the event happened."},
            "ce_subject": {"type": "string", "description": "The job id every event about a job carries."},
            "content-type": {"type": "string", "const": "application/json"},
            "traceparent": {
                "type": "string",
                "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                "description": "W3C trace context, when the event is part of a trace.",
            },
        },
    }


def payload_schema(event: EventType) -> dict[str, Any]:
    """The self-contained JSON Schema (2020-12) of an event's data, from its pydantic model."""
    schema = event.model.model_json_schema(mode="validation", ref_template="#/$defs/{model}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:quartet:schema:{event.ce_type}",
        **schema,
    }


def message_key(event: EventType) -> str:
    """The component key of an event's message (its `ce_type`, which is already a valid key)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", event.ce_type)


def _channel_id(topic: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", topic)


def _kafka_key(description: str) -> dict[str, Any]:
    match = re.search(r"key = ([^.;]+)", description)
    key: dict[str, Any] = {"type": "string"}
    if match:
        key["description"] = match.group(1).strip()
    return key


def _channel_binding(spec: TopicSpec, settings: DocumentSettings) -> dict[str, Any]:
    return {
        "kafka": {
            "topic": spec.name,
            "partitions": spec.partitions or settings.topic_partitions,
            "replicas": settings.topic_replication_factor,
            "topicConfiguration": {
                "cleanup.policy": ["compact"] if spec.compacted else ["delete"],
                "retention.ms": spec.retention_ms or settings.topic_retention_ms,
            },
            "bindingVersion": KAFKA_BINDING_VERSION,
        }
    }


def _version() -> str:
    try:
        return metadata.version("quartet-contracts")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def build_document(
    settings: DocumentSettings | None = None,
    *,
    types: Iterable[EventType] | None = None,
    topics: Iterable[TopicSpec] | None = None,
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document for every registered message type (or `types`) and every core topic."""
    cfg = settings if settings is not None else LocalDocumentSettings()
    events = sorted(types if types is not None else all_types(), key=lambda e: e.ce_type)
    specs: dict[str, TopicSpec] = {s.name: s for s in (topics if topics is not None else expand(CORE_TOPICS))}
    for event in events:
        if event.topic not in specs:
            specs[event.topic] = TopicSpec(event.topic, event.description)
    channels = _channels(specs, events, cfg)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:quartet:messaging",
        "info": {
            "title": "Quartet messaging",
            "version": _version(),
            "description": (
                "Every message is a CloudEvents 1.0 event in Kafka binary mode; `ce_type` names its schema and "
                "version, `ce_id` is its idempotency key, and the Kafka key orders what must stay in order."
            ),
            "tags": [{"name": op.service} for op in _services()],
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": cfg.kafka_bootstrap_servers.split(",")[0],
                "protocol": "kafka",
                "description": "The Kafka cluster (KAFKA_BOOTSTRAP_SERVERS).",
            }
        },
        "channels": channels,
        "operations": _operations(specs, channels),
        "components": {
            "schemas": {HEADERS_SCHEMA: headers_schema()},
            "messages": {message_key(e): _message(e, specs[e.topic]) for e in events},
        },
    }


def _message(event: EventType, spec: TopicSpec) -> dict[str, Any]:
    """One message type: its CloudEvents type as a header, its payload schema, and its Kafka key."""
    return {
        "name": event.ce_type,
        "title": event.model.__name__,
        "summary": event.description or event.ce_type,
        "contentType": "application/json",
        "headers": {
            "allOf": [
                {"$ref": f"#/components/schemas/{HEADERS_SCHEMA}"},
                {"type": "object", "properties": {"ce_type": {"type": "string", "const": event.ce_type}}},
            ]
        },
        "payload": {"schemaFormat": PAYLOAD_SCHEMA_FORMAT, "schema": payload_schema(event)},
        "bindings": {"kafka": {"key": _kafka_key(spec.description), "bindingVersion": KAFKA_BINDING_VERSION}},
    }


def _channels(specs: dict[str, TopicSpec], events: list[EventType], cfg: DocumentSettings) -> dict[str, Any]:
    """A channel per topic, carrying its events (a retry or dead-letter topic carries its base topic's)."""
    by_topic: dict[str, list[EventType]] = {}
    for event in events:
        by_topic.setdefault(event.topic, []).append(event)
    channels: dict[str, Any] = {}
    for name, spec in specs.items():
        base = name.removesuffix(RETRY_SUFFIX).removesuffix(DLQ_SUFFIX)
        carried = by_topic.get(name) or by_topic.get(base, [])
        description = spec.description
        if name.endswith(DLQ_SUFFIX):
            description += (
                " Each keeps the original key, value and headers and adds dlq_error_type, dlq_error_message,"
                " dlq_attempts, dlq_original_topic, dlq_original_partition, dlq_original_offset,"
                " dlq_first_failure_time and dlq_last_failure_time."
            )
        channels[_channel_id(name)] = {
            "address": name,
            "title": name,
            "description": description,
            "messages": {message_key(e): {"$ref": f"#/components/messages/{message_key(e)}"} for e in carried},
            "bindings": _channel_binding(spec, cfg),
        }
    return channels


def _operations(specs: dict[str, TopicSpec], channels: dict[str, Any]) -> dict[str, Any]:
    """Which service sends or receives on which documented topic, with the messages of its channel."""
    operations: dict[str, Any] = {}
    for op in CONTRACT_OPERATIONS:
        if op.topic not in specs:
            continue
        channel = _channel_id(op.topic)
        operations[f"{op.service}.{op.action}.{op.topic}"] = {
            "action": op.action,
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": op.summary,
            "tags": [{"name": op.service}],
            "messages": [{"$ref": f"#/channels/{channel}/messages/{key}"} for key in channels[channel]["messages"]],
        }
    return operations


def _services() -> list[Operation]:
    seen: dict[str, Operation] = {}
    for op in CONTRACT_OPERATIONS:
        seen.setdefault(op.service, op)
    return list(seen.values())


def to_json(document: dict[str, Any]) -> str:
    """The document as indented JSON."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def to_yaml(document: dict[str, Any]) -> str:
    """The document as YAML, keys in document order."""
    return yaml.dump(document, Dumper=_NoAliases, sort_keys=False, allow_unicode=True, width=120)


class _NoAliases(yaml.SafeDumper):
    # Shared sub-dicts (pydantic reuses some) would otherwise become &id001 anchors that many tools reject.
    def ignore_aliases(self, data: Any) -> bool:
        return True


__all__ = [
    "ASYNCAPI_VERSION",
    "CONTRACT_OPERATIONS",
    "Operation",
    "build_document",
    "headers_schema",
    "message_key",
    "payload_schema",
    "to_json",
    "to_yaml",
]
