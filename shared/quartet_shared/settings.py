"""Settings from the environment, with safe local defaults; one subclass per service adds its own prefix."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

S = TypeVar("S", bound=BaseSettings)


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message names every bad one and its variable."""


class KernelSettings(BaseSettings):
    """Settings every service shares: where Kafka, Redis and the database are, and how topics are made."""

    model_config = SettingsConfigDict(env_prefix="QUARTET_", extra="ignore", env_file=".env", populate_by_name=True)

    kafka_bootstrap_servers: str = Field(
        "localhost:9092", validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers")
    )
    redis_url: str = Field("redis://localhost:6379/0", validation_alias=AliasChoices("REDIS_URL", "redis_url"))
    database_url: str | None = Field(None, validation_alias=AliasChoices("DATABASE_URL", "database_url"))
    log_level: str = Field(
        "INFO",
        validation_alias=AliasChoices("LOG_LEVEL", "log_level"),
        pattern="^(?i)(DEBUG|INFO|WARNING|ERROR|CRITICAL)$",
    )

    service_name: str = "quartet"
    instance_id: str = Field(
        "0", description="Stable per worker slot; names the transactional id so a restart fences its predecessor."
    )
    topic_partitions: int = Field(6, ge=1, le=1000)
    topic_replication_factor: int = Field(1, ge=1, le=10)
    topic_retention_ms: int = Field(7 * 24 * 3600 * 1000, ge=60_000)
    dedup_retention_ms: int = Field(14 * 24 * 3600 * 1000, ge=60_000)
    redis_socket_timeout_s: float = Field(0.5, gt=0)
    redis_retry_after_s: float = Field(
        2.0, gt=0, description="After a Redis failure, how long to skip Redis before trying again."
    )
    idempotency_ttl_s: int = Field(7 * 24 * 3600, ge=60)
    producer_linger_ms: int = Field(5, ge=0)
    request_timeout_ms: int = Field(30_000, ge=1000)
    transaction_timeout_ms: int = Field(60_000, ge=1000)
    max_inline_attempts: int = Field(3, ge=1, le=20)
    max_attempts: int = Field(6, ge=1, le=50)
    retry_backoff_base_s: float = Field(0.2, gt=0)
    retry_backoff_max_s: float = Field(30.0, gt=0)
    shutdown_grace_s: float = Field(25.0, gt=0, le=30)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build `cls` from the environment, raising SettingsError that names every bad setting."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", ""))
        lines = []
        for err in exc.errors():
            lines.append(f"  {_variable_name(cls, prefix, err['loc'])}: {err['msg']} (got {err.get('input')!r})")
        raise SettingsError(f"invalid settings for {cls.__name__}:\n" + "\n".join(lines)) from None


def _variable_name(cls: type[BaseSettings], prefix: str, loc: tuple[int | str, ...]) -> str:
    """The environment variable a validation error points at, honouring unprefixed aliases."""
    head = str(loc[0]) if loc else ""
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        choices = [c for c in alias.choices if isinstance(c, str)] if isinstance(alias, AliasChoices) else []
        if head == name or head in choices:
            return choices[0] if choices else (prefix + name).upper()
    return (prefix + head).upper()
