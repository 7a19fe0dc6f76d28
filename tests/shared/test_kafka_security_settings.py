"""Kafka TLS/SASL settings: what the Helm chart passes through becomes kafka-python client options."""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from quartet_shared.settings import KernelSettings, SettingsError, load_settings

SASL_SSL = {
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "quartet",
    "KAFKA_SASL_PASSWORD": "s3cret",
    "KAFKA_SSL_CAFILE": "/etc/quartet/kafka-ca/ca.crt",
}


def _load(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> KernelSettings:
    for var in (*SASL_SSL, "KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    return load_settings(KernelSettings, _env_file=None)


def test_plaintext_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing set, clients connect in plaintext and get no TLS or SASL options."""
    assert _load(monkeypatch, {}).kafka_client_options() == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_options_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """SASL_SSL with SCRAM: protocol, mechanism, credentials and CA file reach the client options."""
    settings = _load(monkeypatch, SASL_SSL)
    assert settings.kafka_client_options() == {
        "security_protocol": "SASL_SSL",
        "ssl_cafile": "/etc/quartet/kafka-ca/ca.crt",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "quartet",
        "sasl_plain_password": "s3cret",
    }
    assert "s3cret" not in repr(settings)


def test_options_are_real_kafka_python_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every option name is one kafka-python's producer, consumer and admin client accept."""
    options = _load(monkeypatch, SASL_SSL).kafka_client_options()
    for client in (KafkaProducer, KafkaConsumer, KafkaAdminClient):
        assert set(options) <= set(client.DEFAULT_CONFIG), client.__name__


def test_incomplete_sasl_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """SASL without credentials fails at start-up, naming what is missing, not at the first connection."""
    with pytest.raises(SettingsError, match="KAFKA_SASL_PASSWORD"):
        _load(monkeypatch, {k: v for k, v in SASL_SSL.items() if k != "KAFKA_SASL_PASSWORD"})


def test_unknown_protocol_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A misspelt protocol is named in the error."""
    with pytest.raises(SettingsError, match="KAFKA_SECURITY_PROTOCOL"):
        _load(monkeypatch, {"KAFKA_SECURITY_PROTOCOL": "SASL-SSL"})


def test_every_kernel_producer_carries_the_security_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """The idempotent producer's configuration (used by APIs, runners and relays) includes TLS and SASL."""
    from quartet_shared.clients import producer_config

    settings = _load(monkeypatch, SASL_SSL)
    cfg = producer_config(settings, transactional_id="t")
    assert cfg["security_protocol"] == "SASL_SSL"
    assert cfg["sasl_plain_password"] == "s3cret"
    assert (cfg["acks"], cfg["enable_idempotence"], cfg["transactional_id"]) == ("all", True, "t")
