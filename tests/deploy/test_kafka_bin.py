"""deploy/kafka/bin: the Kafka distribution's script names over the pinned jars, run for real on this machine.

A broker formatted with kafka-storage.sh and started with kafka-server-start.sh on free ports; the client
scripts then check, create, write and read against it, as they do inside the Kafka image.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from quartet_shared.net import free_port
from quartet_tools.infra import ensure_kafka_installed

from tests.deploy.conftest import REPO

BIN = REPO / "deploy" / "kafka" / "bin"
pytestmark = pytest.mark.integration


def run(script: str, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    """Run one script to completion; its stdout (a failure shows its stderr)."""
    done = subprocess.run(
        [str(BIN / script), *args], input=stdin, capture_output=True, text=True, timeout=90, env=env, check=False
    )
    assert done.returncode == 0, f"{script} {args} exited {done.returncode}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A KRaft broker formatted and started by the scripts; its bootstrap address."""
    ensure_kafka_installed()
    workdir = tmp_path_factory.mktemp("kafka-bin")
    port, controller = free_port(), free_port()
    config = workdir / "server.properties"
    config.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.bootstrap.servers=127.0.0.1:{controller}",
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={workdir / 'data'}",
                "offsets.topic.replication.factor=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "",
            ]
        )
    )
    cluster_id = run("kafka-storage.sh", "random-uuid").strip()
    run("kafka-storage.sh", "format", "-t", cluster_id, "-c", str(config), "--standalone")
    log = (workdir / "broker.log").open("w")
    env = {**os.environ, "KAFKA_HEAP_OPTS": "-Xmx256M -Xms256M"}
    proc = subprocess.Popen(
        [str(BIN / "kafka-server-start.sh"), str(config)], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    bootstrap = f"127.0.0.1:{port}"
    try:
        wait_answering(bootstrap, proc, workdir / "broker.log")
        yield bootstrap
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()


def wait_answering(bootstrap: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Poll kafka-broker-api-versions.sh (the image's health check) until the broker answers, for at most 90 s."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"kafka-server-start.sh exited {proc.returncode}:\n{log.read_text()[-3000:]}"
        probe = subprocess.run(
            [str(BIN / "kafka-broker-api-versions.sh"), "--bootstrap-server", bootstrap],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if probe.returncode == 0 and "Produce(0)" in probe.stdout:
            return
        time.sleep(1)
    pytest.fail(f"the broker on {bootstrap} did not answer within 90 s:\n{log.read_text()[-3000:]}")


def test_storage_prints_a_cluster_id() -> None:
    """random-uuid prints one KRaft cluster id (22 URL-safe base64 characters)."""
    ensure_kafka_installed()
    cluster_id = run("kafka-storage.sh", "random-uuid").strip()
    assert len(cluster_id) == 22, cluster_id


def test_topics_create_and_list(broker: str) -> None:
    """kafka-topics.sh creates a topic the broker then lists."""
    run("kafka-topics.sh", "--bootstrap-server", broker, "--create", "--topic", "bin.topics", "--partitions", "2")
    assert "bin.topics" in run("kafka-topics.sh", "--bootstrap-server", broker, "--list").split()


def test_console_producer_and_consumer_keep_headers_key_and_value(broker: str) -> None:
    """A line with headers, key and value comes back exactly, and stdout carries the record only."""
    run("kafka-topics.sh", "--bootstrap-server", broker, "--create", "--topic", "bin.console")
    line = 'ce_id:1,ce_type:quartet.test\tk-1\t{"a": 1}'
    run(
        "kafka-console-producer.sh",
        *("--bootstrap-server", broker, "--topic", "bin.console"),
        *("--reader-property", "parse.headers=true", "--reader-property", "parse.key=true"),
        stdin=line + "\n",
    )
    out = run(
        "kafka-console-consumer.sh",
        *("--bootstrap-server", broker, "--topic", "bin.console", "--from-beginning"),
        *("--isolation-level", "read_committed", "--max-messages", "1", "--timeout-ms", "30000"),
        *("--formatter-property", "print.headers=true", "--formatter-property", "print.key=true"),
    )
    assert out.splitlines() == [line]


def test_missing_jars_are_named(tmp_path: Path) -> None:
    """With KAFKA_LIBS pointing at no jars, the scripts say where they looked and exit non-zero."""
    done = subprocess.run(
        [str(BIN / "kafka-topics.sh"), "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "KAFKA_LIBS": str(tmp_path)},
        check=False,
    )
    assert done.returncode == 1
    assert f"no Kafka jars in {tmp_path}" in done.stderr
