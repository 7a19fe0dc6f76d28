"""Settings: local defaults, unprefixed shared variables, and a start-up error naming every bad one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from quartet_shared.settings import KernelSettings, SettingsError, load_settings


def test_defaults_are_local_and_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "DATABASE_URL", "LOG_LEVEL"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings(KernelSettings)
    assert s.kafka_bootstrap_servers == "localhost:9092"
    assert s.redis_url == "redis://localhost:6379/0"
    assert s.database_url is None


def test_shared_variables_are_unprefixed_and_tuning_is_prefixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k:1")
    monkeypatch.setenv("QUARTET_TOPIC_PARTITIONS", "12")
    s = load_settings(KernelSettings)
    assert (s.kafka_bootstrap_servers, s.topic_partitions) == ("k:1", 12)


def test_an_empty_instance_id_is_the_host_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a scaled Compose worker sets: each replica's container id, as its host name, names its transactional id."""
    monkeypatch.setenv("QUARTET_INSTANCE_ID", "")
    assert load_settings(KernelSettings).instance_id == socket.gethostname() != ""
    monkeypatch.setenv("QUARTET_INSTANCE_ID", "worker-2")
    assert load_settings(KernelSettings).instance_id == "worker-2"
    monkeypatch.delenv("QUARTET_INSTANCE_ID")
    assert load_settings(KernelSettings, _env_file=None).instance_id == "0"


def test_every_bad_setting_is_named_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "loud")
    monkeypatch.setenv("QUARTET_TOPIC_PARTITIONS", "0")
    with pytest.raises(SettingsError) as info:
        load_settings(KernelSettings)
    text = str(info.value)
    assert "LOG_LEVEL:" in text
    assert "QUARTET_LOG_LEVEL" not in text
    assert "QUARTET_TOPIC_PARTITIONS:" in text


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "role", "variable"),
    [
        ("training-worker", "worker", "TRAINING_MAX_ROWS"),
        ("path-planner", "api", "PLANNER_MAX_EVALUATIONS"),
        ("rental-manager", "relay", "RENTAL_PORT"),
    ],
)
def test_a_service_started_with_a_malformed_setting_exits_naming_it_without_a_traceback(
    script: str, role: str, variable: str, tmp_path: Path
) -> None:
    env = {**os.environ, variable: "lots", "RENTAL_JWT_SECRET": "x" * 64}
    done = subprocess.run(
        [str(Path(sys.executable).parent / script), role],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"{variable}: " in done.stderr and "'lots'" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]


def test_a_heartbeat_longer_than_half_the_session_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUARTET_CONSUMER_SESSION_TIMEOUT_MS", "6000")
    monkeypatch.setenv("QUARTET_CONSUMER_HEARTBEAT_INTERVAL_MS", "4000")
    with pytest.raises(SettingsError, match="consumer_heartbeat_interval_ms"):
        load_settings(KernelSettings)
    monkeypatch.setenv("QUARTET_CONSUMER_HEARTBEAT_INTERVAL_MS", "2000")
    assert load_settings(KernelSettings).consumer_heartbeat_interval_ms == 2000
