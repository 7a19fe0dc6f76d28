"""A zombie by network on the 3-node cluster: a transactional worker cut off from every node (through the side
proxies only it uses) while it holds an open transaction, past its session and transaction timeouts. Another
worker takes its partitions; when the zombie is reconnected its late commit is fenced, so a read_committed
reader finds one output per input although the zombie's records are on the topic."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from tests.support.cluster import ClusterServers
from tests.support.cluster_records import Reader, assert_one_output_per_input
from tests.support.effects import publish_items, wait_until
from tests.support.processes import Workers

pytestmark = [pytest.mark.integration, pytest.mark.fault]

INPUTS = 60
# Past the worker's 6 s session timeout and the cluster settings' 15 s transaction timeout.
PAUSE_S = 35.0
CUT_S = 25.0


def _all_records(bootstrap: str, topic: str) -> int:
    """Records on `topic` including those of aborted and open transactions (read_uncommitted)."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        isolation_level="read_uncommitted",
        consumer_timeout_ms=3000,
    )
    try:
        return sum(1 for _ in consumer)
    finally:
        consumer.close()


def test_a_worker_partitioned_with_an_open_transaction_has_its_late_commit_fenced(
    cluster: ClusterServers, unique: str, tmp_path: Path
) -> None:
    """The zombie produces a batch's outputs, is cut off before committing, and commits once reconnected."""
    settings = cluster.settings()
    source, out = cluster.new_topic(f"in.{unique}"), cluster.new_topic(f"out.{unique}")
    ids = publish_items(settings, source, INPUTS, keys=12)
    common = ["--topic", source, "--group", f"tx.{unique}", "--run", unique, "--mode", "transactional"]
    common += ["--out-topic", out, "--max-poll-records", "20"]
    marker = tmp_path / "in-window"
    zombies = Workers(settings.model_copy(update={"kafka_bootstrap_servers": cluster.side_bootstrap}), tmp_path)
    workers = Workers(settings, tmp_path)
    try:
        zombies.start(*common, "--pause-before-commit-s", str(PAUSE_S), "--marker", str(marker), instance="z")
        wait_until(marker.exists, 120, "the zombie to hold an open transaction with its outputs written")
        opened = time.monotonic()
        cluster.cut_side()
        workers.start(*common, instance="w")
        wait_until(lambda: len(Reader(settings, out).read_to_end()) >= INPUTS, 120, "the other worker's outputs", 2)
        time.sleep(max(0.0, opened + CUT_S - time.monotonic()))
        cluster.proxies.reset()
        # The zombie wakes and commits after its pause; give it the time to try.
        time.sleep(max(0.0, opened + PAUSE_S + 10 - time.monotonic()))
    finally:
        zombies.terminate_all()
        workers.terminate_all()
    assert _all_records(cluster.bootstrap, out) > INPUTS, "the zombie's outputs must be on the topic"
    zombie_log = (tmp_path / "worker-0-z.log").read_text()
    assert re.search(r"ProducerFenced|InvalidProducerEpoch", zombie_log), "the zombie was never fenced"
    assert_one_output_per_input(ids, Reader(settings, out).read_to_end())
