"""API keys with scopes: 401 without a valid key, 403 without the scope, closed when none is configured."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Annotated

import pytest
from fastapi.testclient import TestClient
from quartet_shared.auth import (
    JOBS_WRITE,
    SCOPES,
    ApiKey,
    ApiKeys,
    bearer_headers,
    require_scope,
    write_api_keys_file,
)
from quartet_shared.http import create_app
from quartet_shared.settings import KernelSettings, SettingsError

from tests.support.auth import ADMIN, ADMIN_KEY, API_KEYS, API_KEYS_JSON, READER, WRITER


def client(keys: ApiKeys | None) -> TestClient:
    app = create_app(title="auth", api_keys=keys)

    @app.post("/things", status_code=201)
    def make(key: Annotated[ApiKey, require_scope(JOBS_WRITE)]) -> dict[str, str]:
        return {"by": key.name}

    @app.get("/things")
    def read() -> list[str]:
        return []

    return TestClient(app)


@pytest.fixture
def api() -> TestClient:
    return client(ApiKeys.parse(API_KEYS_JSON))


def assert_problem(answer: object, status: int) -> dict[str, object]:
    from httpx import Response

    assert isinstance(answer, Response)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = answer.json()
    assert body["status"] == status
    return body


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-configured-key-at-all"}, {"Authorization": f"Basic {ADMIN_KEY}"}],
    ids=["missing", "unknown", "not-bearer"],
)
def test_a_missing_or_unknown_key_is_401_with_a_bearer_challenge(api: TestClient, headers: dict[str, str]) -> None:
    answer = api.post("/things", headers=headers)
    assert_problem(answer, 401)
    assert answer.headers["www-authenticate"].startswith("Bearer")


def test_a_key_without_the_scope_is_403_naming_the_scope(api: TestClient) -> None:
    body = assert_problem(api.post("/things", headers=READER), 403)
    assert body["required_scope"] == JOBS_WRITE
    assert "test-reader" in str(body["detail"])


def test_a_key_with_the_scope_passes_and_names_the_caller(api: TestClient) -> None:
    assert api.post("/things", headers=WRITER).json() == {"by": "test-writer"}
    assert api.post("/things", headers=ADMIN).json() == {"by": "test-admin"}


def test_unprotected_routes_stay_open(api: TestClient) -> None:
    assert api.get("/things").status_code == 200
    assert api.get("/healthz").status_code == 200


@pytest.mark.parametrize("keys", [None, ApiKeys.parse(None), ApiKeys.parse("  ")], ids=["none", "unset", "blank"])
def test_no_keys_configured_means_every_protected_route_is_closed(keys: ApiKeys | None) -> None:
    body = assert_problem(client(keys).post("/things", headers=ADMIN), 401)
    assert "QUARTET_API_KEYS" in str(body["detail"])


def test_only_digests_of_the_secrets_are_kept() -> None:
    keys = ApiKeys.parse(API_KEYS_JSON)
    assert ADMIN_KEY not in repr(keys)
    assert ADMIN_KEY.encode() not in b"".join(digest for digest, _ in keys.digests)
    assert keys.identify(ADMIN_KEY) == ApiKey("test-admin", SCOPES)
    assert keys.identify(ADMIN_KEY + "x") is None


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ('{"a": {"key": "short-secret", "scopes": ["jobs:write"]}}', "a.key"),
        ('{"a": {"key": "a-long-enough-secret-value", "scopes": ["jobs:everything"]}}', "jobs:everything"),
        ('{"a": {"key": "a-long-enough-secret-value", "scopes": []}}', "a.scopes"),
        ('{"a": {"key": "a-long-enough-secret-value", "scopes": ["jobs:write"], "admin": true}}', "a.admin"),
        ('["a-long-enough-secret-value"]', "value"),
        ('{"a": {"key": "a-long-enough-secret-value"', "value"),
        (
            '{"a": {"key": "a-long-enough-secret-value", "scopes": ["jobs:write"]}, '
            '"b": {"key": "a-long-enough-secret-value", "scopes": ["jobs:read"]}}',
            "share one secret",
        ),
    ],
    ids=["short", "unknown-scope", "no-scopes", "extra-field", "not-an-object", "not-json", "shared-secret"],
)
def test_a_malformed_key_list_fails_naming_the_problem_without_echoing_secrets(config: str, named: str) -> None:
    with pytest.raises(SettingsError) as caught:
        ApiKeys.parse(config)
    message = str(caught.value)
    assert named in message
    assert "secret" not in message.replace("share one secret", "")


def test_settings_read_the_key_list_and_the_client_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUARTET_API_KEYS", API_KEYS_JSON)
    monkeypatch.setenv("QUARTET_API_KEY", ADMIN_KEY)
    settings = KernelSettings(_env_file=None)  # type: ignore[call-arg]
    assert ApiKeys.from_settings(settings).identify(ADMIN_KEY) is not None
    assert settings.api_key is not None and settings.api_key.get_secret_value() == ADMIN_KEY
    assert ADMIN_KEY not in repr(settings)
    assert API_KEYS.get_secret_value() not in str(settings.model_dump())


def test_openapi_declares_the_bearer_scheme_on_protected_routes_only(api: TestClient) -> None:
    doc = api.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    assert doc["paths"]["/things"]["post"]["security"] == [{"ApiKey": []}]
    assert "security" not in doc["paths"]["/things"]["get"]


def test_the_keys_file_is_written_once_private_with_an_all_scopes_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "api-keys.env"
    first = write_api_keys_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = first["QUARTET_API_KEY"]
    assert len(secret) >= 40
    keys = ApiKeys.parse(first["QUARTET_API_KEYS"])
    assert keys.identify(secret) == ApiKey("admin", SCOPES)
    assert write_api_keys_file(path) == first
    assert json.loads(first["QUARTET_API_KEYS"])["admin"]["key"] == secret
    assert bearer_headers(secret) == {"Authorization": f"Bearer {secret}"}
    assert bearer_headers(None) == {}
