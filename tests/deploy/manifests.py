"""Validate Kubernetes manifests: built-in kinds with `kubernetes-validate`, custom resources with their CRDs.

CRD schemas are OpenAPI v3 structural schemas; `crd_validator` turns one into JSON Schema the way the API
server reads it: `nullable`, `x-kubernetes-int-or-string` and `x-kubernetes-preserve-unknown-fields` honoured,
and unknown fields rejected (as `kubectl apply --validate=strict` does) instead of silently pruned.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "deploy" / "schemas" / "crds"
KUBERNETES_VERSION = "1.34.0"


def _structural(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_structural(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _structural(v) for k, v in schema.items() if not k.startswith("x-kubernetes-") and k != "nullable"}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    closed = "properties" in schema and "additionalProperties" not in schema
    if schema.get("type") == "object" and closed and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@cache
def crd_validator(api_version: str, kind: str) -> jsonschema.Draft7Validator:
    """The validator for a custom resource kind from its vendored CRD schema."""
    group, version = api_version.split("/")
    path = CRDS / f"{group}_{version}_{kind}.json"
    assert path.exists(), f"no vendored CRD schema for {api_version} {kind} (deploy/schemas/refresh.py)"
    schema = _structural(json.loads(path.read_text()))
    # The API server fills these for every object; a manifest may carry any valid ObjectMeta.
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


def validate(doc: dict[str, Any]) -> list[str]:
    """Every problem with one manifest, as `Kind/name: path: message` lines (empty when valid)."""
    name = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
    api_version = str(doc.get("apiVersion", ""))
    if api_version.split("/")[0].endswith((".strimzi.io", "keda.sh", "monitoring.coreos.com")):
        errors = crd_validator(api_version, str(doc["kind"])).iter_errors(doc)
        return [f"{name}: {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{name}: {'/'.join(map(str, exc.path))}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [f"{name}: {exc.message}"]
    return []


def documents(text: str) -> list[dict[str, Any]]:
    """The non-empty YAML documents of a multi-document stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc]
