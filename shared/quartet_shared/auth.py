"""API keys with scopes: who may submit and cancel jobs, upload datasets, list jobs and drive the simulator.

Every service reads one variable, QUARTET_API_KEYS, a JSON object naming each key with its secret and scopes:
`{"ci": {"key": "<secret>", "scopes": ["jobs:write"]}}`. Only the secrets' SHA-256 digests stay in memory, and a
presented key is compared with every digest by `hmac.compare_digest`, so neither memory nor timing tells how close
a guess came. With no keys configured every protected route answers 401: closed by default, yet the service starts.
Clients send `Authorization: Bearer <secret>`; the `quartet` CLI reads its secret from QUARTET_API_KEY.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from quartet_shared.http import Problem
from quartet_shared.settings import KernelSettings, SettingsError

log = logging.getLogger(__name__)

JOBS_READ: Final = "jobs:read"
JOBS_WRITE: Final = "jobs:write"
SIMULATOR_RUN: Final = "simulator:run"
SIMULATOR_ADMIN: Final = "simulator:admin"
SCOPES: Final = frozenset({JOBS_READ, JOBS_WRITE, SIMULATOR_RUN, SIMULATOR_ADMIN})
# token_urlsafe(32) gives 43 characters; anything under 16 is guessable enough to refuse outright.
MIN_KEY_LENGTH: Final = 16


class _KeyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(min_length=MIN_KEY_LENGTH, max_length=1024)
    scopes: list[str] = Field(min_length=1, max_length=len(SCOPES))


class _KeysConfig(RootModel[dict[str, _KeyConfig]]):
    pass


@dataclass(frozen=True)
class ApiKey:
    """An authenticated caller: the key's name (never its secret) and what it may do."""

    name: str
    scopes: frozenset[str]

    def require(self, scope: str, why: str | None = None) -> None:
        """Raise Problem 403 unless this key has `scope`; `why` says what needed it."""
        if scope not in self.scopes:
            detail = f"API key {self.name!r} lacks the scope {scope!r}" + (f", which {why}" if why else "")
            log.info("api key refused", extra={"key_name": self.name, "scope": scope})
            raise Problem(403, "Forbidden", detail, required_scope=scope)


@dataclass(frozen=True)
class ApiKeys:
    """The configured keys, kept as SHA-256 digests of their secrets."""

    digests: tuple[tuple[bytes, ApiKey], ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> ApiKeys:
        """Keys from QUARTET_API_KEYS' JSON; SettingsError naming what is wrong, never echoing a secret."""
        if text is None or not text.strip():
            return cls()
        try:
            config = _KeysConfig.model_validate_json(text).root
        except ValidationError as exc:
            # Only where and what: the input is a secret, and pydantic's messages would quote it.
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
                for err in exc.errors(include_input=False, include_url=False)
            )
            raise SettingsError(f"QUARTET_API_KEYS is not a valid key list ({problems})") from None
        entries: list[tuple[bytes, ApiKey]] = []
        for name, entry in config.items():
            unknown = sorted(set(entry.scopes) - SCOPES)
            if unknown:
                known = sorted(SCOPES)
                raise SettingsError(f"QUARTET_API_KEYS: key {name!r} has unknown scopes {unknown}; known: {known}")
            entries.append((_digest(entry.key), ApiKey(name, frozenset(entry.scopes))))
        if len({digest for digest, _ in entries}) != len(entries):
            raise SettingsError("QUARTET_API_KEYS: two keys share one secret; give each its own")
        return cls(tuple(entries))

    @classmethod
    def from_settings(cls, settings: KernelSettings) -> ApiKeys:
        """The keys a service's settings configure (QUARTET_API_KEYS)."""
        secret = settings.api_keys
        keys = cls.parse(secret.get_secret_value() if secret is not None else None)
        if not keys.digests:
            log.warning("no API keys configured (QUARTET_API_KEYS): every protected route answers 401")
        return keys

    def identify(self, secret: str) -> ApiKey | None:
        """The key whose secret this is, or None; compares with every key, each in constant time."""
        digest = _digest(secret)
        found: ApiKey | None = None
        for stored, key in self.digests:
            if hmac.compare_digest(digest, stored):
                found = key
        return found


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key's secret (QUARTET_API_KEYS on the server; QUARTET_API_KEY for the CLI).",
)


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="quartet"'})


def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
) -> ApiKey:
    """The caller's API key from `Authorization: Bearer`; Problem 401 if missing or unknown."""
    keys: ApiKeys | None = getattr(request.app.state, "api_keys", None)
    if keys is None or not keys.digests:
        raise _unauthorized("this service has no API keys configured (QUARTET_API_KEYS)")
    if credentials is None:
        raise _unauthorized("send an API key as 'Authorization: Bearer <key>'")
    key = keys.identify(credentials.credentials)
    if key is None:
        raise _unauthorized("the API key is not valid")
    return key


def require_scope(scope: str) -> Any:
    """A dependency admitting only callers whose API key has `scope` (401 without a valid key, 403 without it)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; known: {sorted(SCOPES)}")

    def check(key: Annotated[ApiKey, Depends(authenticate)]) -> ApiKey:
        key.require(scope)
        return key

    check.__name__ = f"require_{scope.replace(':', '_')}"
    return Depends(check)


def bearer_headers(secret: str | None) -> dict[str, str]:
    """The request header carrying `secret`, or none when there is no secret."""
    return {"Authorization": f"Bearer {secret}"} if secret else {}


def write_api_keys_file(path: Path) -> Mapping[str, str]:
    """Create `path` (mode 0600) once with a random all-scopes key, as QUARTET_API_KEYS and QUARTET_API_KEY.

    An existing file is kept: the services, the CLI and the user's shell keep agreeing on the key.
    Returns the two variables as written.
    """
    from dotenv import dotenv_values

    if not path.exists():
        secret = secrets.token_urlsafe(32)
        keys = json.dumps({"admin": {"key": secret, "scopes": sorted(SCOPES)}}, separators=(",", ":"))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("# Written once by `make up`; keep it private. Every scope: " + ", ".join(sorted(SCOPES)) + "\n")
            # Single quotes keep the JSON literal for bash, dotenv and Compose alike.
            out.write(f"QUARTET_API_KEYS='{keys}'\nQUARTET_API_KEY={secret}\n")
    values = dotenv_values(path)
    return {k: v for k, v in values.items() if v is not None}


__all__ = [
    "JOBS_READ",
    "JOBS_WRITE",
    "SCOPES",
    "SIMULATOR_ADMIN",
    "SIMULATOR_RUN",
    "ApiKey",
    "ApiKeys",
    "authenticate",
    "bearer_headers",
    "require_scope",
    "write_api_keys_file",
]
