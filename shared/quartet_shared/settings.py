"""Settings from the environment, with safe local defaults; one subclass per service adds its own prefix."""

from __future__ import annotations

import socket
import sys
from typing import Any, Literal, Self, TypeVar

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from quartet_contracts.topics import LocalTopicDefaults

S = TypeVar("S", bound=BaseSettings)

# A job spec travels as one Kafka message, whose default ceiling is 1 MiB; a route that takes more (an upload)
# raises its own limit with FastAPI's `max_body_size`.
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024


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
    # How clients reach a secured Kafka (the Helm chart passes these through); PLAINTEXT needs none of them.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", validation_alias=AliasChoices("KAFKA_SECURITY_PROTOCOL", "kafka_security_protocol")
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, validation_alias=AliasChoices("KAFKA_SASL_MECHANISM", "kafka_sasl_mechanism")
    )
    kafka_sasl_username: str | None = Field(
        None, validation_alias=AliasChoices("KAFKA_SASL_USERNAME", "kafka_sasl_username")
    )
    kafka_sasl_password: SecretStr | None = Field(
        None, validation_alias=AliasChoices("KAFKA_SASL_PASSWORD", "kafka_sasl_password")
    )
    kafka_ssl_cafile: str | None = Field(
        None,
        validation_alias=AliasChoices("KAFKA_SSL_CAFILE", "kafka_ssl_cafile"),
        description="PEM file of the CA that signed the brokers' certificates; None: the system's CAs.",
    )
    # One variable for every service, whatever its prefix (quartet_shared.auth reads it); secrets, never logged.
    api_keys: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("QUARTET_API_KEYS", "api_keys"),
        description='Server side: {"<name>": {"key": "<secret>", "scopes": [...]}}; unset: protected routes 401.',
    )
    api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("QUARTET_API_KEY", "api_key"),
        description="Client side: the secret the CLI sends as 'Authorization: Bearer'.",
    )

    service_name: str = "quartet"
    instance_id: str = Field(
        "0",
        description="Stable per worker slot; names the transactional id so a restart fences its predecessor. "
        "Empty: this host's name (a Compose container's id, so each replica of a scaled worker has its own).",
    )
    topic_partitions: int = Field(LocalTopicDefaults.topic_partitions, ge=1, le=1000)
    topic_replication_factor: int = Field(LocalTopicDefaults.topic_replication_factor, ge=1, le=10)
    topic_retention_ms: int = Field(LocalTopicDefaults.topic_retention_ms, ge=60_000)
    dedup_retention_ms: int = Field(14 * 24 * 3600 * 1000, ge=60_000)
    redis_socket_timeout_s: float = Field(0.5, gt=0)
    redis_retry_after_s: float = Field(
        2.0, gt=0, description="After a Redis failure, how long to skip Redis before trying again."
    )
    idempotency_ttl_s: int = Field(7 * 24 * 3600, ge=60)
    max_request_bytes: int = Field(
        DEFAULT_MAX_REQUEST_BYTES, ge=1024, description="Largest request body the API reads (413 beyond it, unparsed)."
    )
    producer_linger_ms: int = Field(5, ge=0)
    request_timeout_ms: int = Field(30_000, ge=1000)
    transaction_timeout_ms: int = Field(60_000, ge=1000)
    # Far below the broker's 1 MiB default, so an event that would be refused fails here, named and at once.
    max_event_bytes: int = Field(
        256 * 1024,
        ge=1024,
        le=1_000_000,
        description="Largest encoded event (key, value, headers) a producer sends; larger ones raise EventTooLarge.",
    )
    max_inline_attempts: int = Field(3, ge=1, le=20)
    max_attempts: int = Field(6, ge=1, le=50)
    retry_backoff_base_s: float = Field(0.2, gt=0)
    retry_backoff_max_s: float = Field(30.0, gt=0)
    shutdown_grace_s: float = Field(25.0, gt=0, le=30)
    # kafka-python 3.0 makes every client call wait on the client's I/O thread with no timeout of its own; a runner
    # whose poll, commit or lag probe has not returned after this long breaks the call and rebuilds its consumer.
    consumer_stall_timeout_s: float = Field(30.0, gt=0)
    # How long a consumer that stopped heartbeating (SIGKILLed, frozen, cut off) keeps its partitions before the
    # group hands them to the others: the bulk of a killed worker's recovery when nothing restarts it. 6 s, the
    # brokers' floor (group.min.session.timeout.ms) and Kafka's default before 3.0, so that a killed worker's
    # partitions move within the 10 s; the heartbeat thread of kafka-python runs apart from the poll
    # loop, so a long batch does not expel its member, only a process starved of the CPU for 6 s does (its
    # batch is then aborted and redone elsewhere, never doubled).
    consumer_session_timeout_ms: int = Field(6_000, ge=1000, le=300_000)
    # Kafka's own ratio, a third of the session: two heartbeats may be lost before the member is.
    consumer_heartbeat_interval_ms: int = Field(2_000, ge=100, le=100_000)
    # A transactional runner joins its group as a static member named by its transactional id (group.instance.id,
    # KIP-345): a worker restarted in its slot by its supervisor (the simulator's, Compose's restart policy,
    # Kubernetes) rejoins as the member it was and gets its own partitions back with no rebalance of the others,
    # where a new dynamic member waits for its killed predecessor's session to expire and then moves every
    # member's partitions. Its cost: a static member never leaves its group on a clean stop, so a worker stopped
    # for good (scaling down) leaves its partitions idle for one session timeout (6 s) before they move.
    consumer_static_membership: bool = True
    # An at-least-once runner commits its consumed offsets at most this often, not after every batch (Quix
    # Streams' commit_interval, Kafka's auto.commit.interval.ms): a batch's outputs are still flushed and its ids
    # recorded in Redis before the next poll, so a record consumed again after a crash within the interval is
    # skipped as done. Offsets are also committed before partitions are revoked and before the consumer closes.
    # In `make bench` (kernel section, 2026-12-05) it buys 7 %: (b) 0.82 of the raw loop, 0.77 committing after
    # every batch (0, which this setting allows). Transactional runners commit each batch's transaction anyway.
    consumer_commit_interval_s: float = Field(1.0, ge=0, le=60)
    # A healthy flush, offsets send or commit of a batch's transaction takes well under a second, a leader
    # election a few; kafka-python's producer stuck on a dead transaction coordinator waits 120 s. Past this bound
    # the runner aborts the batch and builds a new producer with the same transactional id. 8 s: above the
    # brokers' session (6 s, `quartet_tools.infra.broker_settings`) after which the controller fences a dead node
    # and elects new leaders, so the first replacement built is usually told the new coordinator, not the dead
    # one (with 10 s, a coordinator kill recovered in 23-25 s; a bound below the fencing makes every replacement
    # wait on the dead node again).
    transaction_stall_timeout_s: float = Field(8.0, gt=0, le=120)

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> Self:
        if self.consumer_heartbeat_interval_ms * 2 > self.consumer_session_timeout_ms:
            raise ValueError("consumer_heartbeat_interval_ms must be at most half of consumer_session_timeout_ms")
        return self

    @field_validator("instance_id")
    @classmethod
    def _host_name_when_empty(cls, value: str) -> str:
        return value or socket.gethostname()

    @model_validator(mode="after")
    def _sasl_is_complete(self) -> Self:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs KAFKA_SASL_MECHANISM, "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        return self

    def kafka_client_options(self) -> dict[str, Any]:
        """kafka-python keyword arguments for TLS and SASL, for every producer, consumer and admin client."""
        options: dict[str, Any] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol in ("SSL", "SASL_SSL") and self.kafka_ssl_cafile:
            options["ssl_cafile"] = self.kafka_ssl_cafile
        if self.kafka_security_protocol.startswith("SASL_"):
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            options["sasl_plain_password"] = (
                self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
            )
        return options


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


def settings_or_exit(cls: type[S], prog: str) -> S:
    """`load_settings(cls)` as a process starts: a bad setting ends it with exit code 2 and a message naming each
    bad variable (what a container's log and `docker compose up --wait` show), not a traceback."""
    try:
        return load_settings(cls)
    except SettingsError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _variable_name(cls: type[BaseSettings], prefix: str, loc: tuple[int | str, ...]) -> str:
    """The environment variable a validation error points at, honouring unprefixed aliases."""
    head = str(loc[0]) if loc else ""
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        choices = [c for c in alias.choices if isinstance(c, str)] if isinstance(alias, AliasChoices) else []
        if head == name or head in choices:
            return choices[0] if choices else (prefix + name).upper()
    return (prefix + head).upper()
