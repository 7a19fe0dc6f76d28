"""A zombie by network on the 3-node cluster: a transactional worker cut off from every node (through the side
proxies only it uses) while it holds an open transaction, past its session and transaction timeouts. Another
worker takes its partitions; when the zombie is reconnected its late commit is fenced, so a read_committed
reader finds one output per input although the zombie's records are on the topic."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from quartet_tools.harness.cluster import ClusterServers
from quartet_tools.harness.effects import publish_items
from quartet_tools.harness.processes import Workers

from tests.support.cluster_records import Reader, assert_one_output_per_input
from tests.support.effects import records_to_end, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.fault]

INPUTS = 60
# Past the worker's 6 s session timeout; the coordinator aborts a transaction within its timeout plus the broker's
# 10 s sweep for expired ones (transaction.abort.timed.out.transaction.cleanup.interval.ms), so the shorter the
# timeout, the sooner the zombie is aborted and fenced.
TRANSACTION_TIMEOUT_MS = 8_000
# An upper bound only: the test releases the zombie's commit as soon as its transaction has been aborted.
PAUSE_S = 120.0
FENCED = re.compile(r"ProducerFenced|InvalidProducerEpoch")


def test_a_worker_partitioned_with_an_open_transaction_has_its_late_commit_fenced(
    cluster: ClusterServers, unique: str, tmp_path: Path
) -> None:
    """The zombie produces a batch's outputs, is cut off before committing, and commits once reconnected."""
    settings = cluster.settings(transaction_timeout_ms=TRANSACTION_TIMEOUT_MS)
    source, out = cluster.new_topic(f"in.{unique}"), cluster.new_topic(f"out.{unique}")
    ids = publish_items(settings, source, INPUTS, keys=12)
    common = ["--topic", source, "--group", f"tx.{unique}", "--run", unique, "--mode", "transactional"]
    common += ["--out-topic", out, "--max-poll-records", "20"]
    marker, release = tmp_path / "in-window", tmp_path / "release"
    zombie_log = tmp_path / "worker-0-z.log"
    zombies = Workers(settings.model_copy(update={"kafka_bootstrap_servers": cluster.side_bootstrap}), tmp_path)
    workers = Workers(settings, tmp_path)
    try:
        zombies.start(
            *common,
            "--pause-before-commit-s",
            str(PAUSE_S),
            "--marker",
            str(marker),
            "--release",
            str(release),
            instance="z",
        )
        wait_until(marker.exists, 120, "the zombie to hold an open transaction with its outputs written")
        cluster.cut_side()
        workers.start(*common, instance="w")
        # The other worker only gets the zombie's partitions once the zombie's session has expired, and its
        # outputs behind the zombie's open transaction are readable committed only once the coordinator has
        # aborted that transaction: seeing all of them means the zombie is past both timeouts.
        wait_until(lambda: len(Reader(settings, out).read_to_end()) >= INPUTS, 120, "the other worker's outputs", 1)
        cluster.proxies.reset()
        release.write_text("commit now")
        wait_until(lambda: bool(FENCED.search(zombie_log.read_text())), 60, "the zombie's late commit to be fenced")
    finally:
        zombies.terminate_all()
        workers.terminate_all()
    assert len(records_to_end(settings, [out], committed=False)) > INPUTS, "the zombie's outputs must be on the topic"
    assert FENCED.search(zombie_log.read_text()), "the zombie was never fenced"
    assert_one_output_per_input(ids, Reader(settings, out).read_to_end())
