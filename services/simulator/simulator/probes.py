"""Aborted probes: records written onto the results topics inside transactions that are never committed.

The audit's reader is `read_committed`, so it must never see one; each probe it reads is an aborted read. The
prober never calls commit, so every probe id it sent belongs to a transaction that was aborted (by the prober,
or, should the abort fail, by the fresh producer's init or the transaction timeout): no outcome is uncertain.
Probes go to every partition in turn, between the workers' own transactions on the same partitions.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Sequence

from kafka.errors import KafkaError
from quartet_contracts.envelope import Envelope
from quartet_shared.clients import RECONNECT_BACKOFF_MAX_MS
from quartet_shared.producer import Producer, close_kafka_producer, open_transactional
from quartet_shared.settings import KernelSettings

from simulator.domain.garbage import SOURCE

log = logging.getLogger(__name__)

PROBE_TYPE = "quartet.simulator.AbortedProbe.v1"
# Short, so that a probe transaction left open by a broker restart holds the partition's readers back briefly.
PROBE_TRANSACTION_TIMEOUT_MS = 10_000


class AbortedProbes:
    """Every `interval_s`, one transaction with a probe on each results topic, then an abort; on a thread."""

    def __init__(self, settings: KernelSettings, topics: Sequence[str], run_id: str, interval_s: float) -> None:
        self._settings, self._topics, self._run_id, self._interval = settings, list(topics), run_id, interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._ids: set[str] = set()
        self._producer: Producer | None = None
        self.errors = 0

    def start(self) -> None:
        """Probe until stopped (not at all with an interval of 0)."""
        if self._interval > 0 and self._topics:
            self._thread = threading.Thread(target=self._run, name="sim-probes", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop probing and close the producer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def ids(self) -> frozenset[str]:
        """The ids of every probe sent: none of them was ever committed."""
        with self._lock:
            return frozenset(self._ids)

    def _run(self) -> None:
        round_no = 0
        try:
            while not self._stop.wait(self._interval):
                try:
                    self._round(round_no)
                except KafkaError as exc:
                    self.errors += 1
                    log.warning("aborted probe round %d failed: %s", round_no, exc)
                    self._drop_producer()
                round_no += 1
        finally:
            self._drop_producer()

    def _open(self) -> Producer:
        if self._producer is None:
            # Its init fences an earlier producer of this run and aborts whatever transaction it left open.
            self._producer = open_transactional(
                functools.partial(
                    Producer,
                    self._settings,
                    transactional_id=f"simulator-probes-{self._run_id}",
                    transaction_timeout_ms=PROBE_TRANSACTION_TIMEOUT_MS,
                    reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
                )
            )
        return self._producer

    def _round(self, round_no: int) -> None:
        producer = self._open()
        producer.raw.begin_transaction()
        for index, topic in enumerate(self._topics):
            partitions = sorted(producer.raw.partitions_for(topic) or [0])
            probe_id = f"aborted-probe-{self._run_id}-{round_no}-{index}"
            with self._lock:
                self._ids.add(probe_id)
            envelope = Envelope(type=PROBE_TYPE, source=SOURCE, id=probe_id, subject=probe_id, key=probe_id, data={})
            producer.send(topic, envelope, partition=partitions[round_no % len(partitions)])
        # Flushed first, so the probes are on the log (and must be filtered out) before their transaction ends.
        producer.flush()
        producer.raw.abort_transaction()

    def _drop_producer(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(Exception):
                close_kafka_producer(self._producer.raw, 0)
            self._producer = None
