"""The outbox relay: publish unsent outbox rows to Kafka with the idempotent producer, then mark them sent.

Each batch is one database transaction: claim rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several
relays share the work without publishing the same row at once), publish them, wait for the broker's
acks=all, mark them sent, commit. A relay killed after publishing and before committing leaves the rows
unsent; the next relay publishes them again under the same `ce_id` (the row id), and consumers drop the
second copy. So an event is published at least once, and processed once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import Gauge
from quartet_contracts.envelope import Envelope
from quartet_shared.producer import Producer
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from rental_manager.adapters.orm import OutboxMessage

log = logging.getLogger(__name__)

OUTBOX_BACKLOG = Gauge("quartet_outbox_backlog", "Outbox rows not yet published, as the relay last counted them.")
OUTBOX_OLDEST_SECONDS = Gauge(
    "quartet_outbox_oldest_unsent_seconds", "Age of the oldest unpublished outbox row (0 when none is waiting)."
)
# Counting is one index-only query (ix_outbox_unsent covers exactly the unsent rows); once a second is plenty
# for a scrape every 15 s and keeps it off the busy relay's path.
BACKLOG_EVERY_S = 1.0


class OutboxRelay:
    """Moves outbox rows to Kafka; `wake()` after a commit skips the idle wait."""

    def __init__(
        self,
        engine: Engine,
        producer: Producer,
        *,
        source: str,
        batch_size: int = 200,
        idle_s: float = 0.2,
        publish_timeout_s: float = 30.0,
        fault_pause_s: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._engine = engine
        self._producer = producer
        self._source = source
        self._batch = batch_size
        self._idle_s = idle_s
        self._timeout_s = publish_timeout_s
        self._fault_pause_s = fault_pause_s
        self._sleep = sleep
        self._wake = threading.Event()
        self.stopping = threading.Event()
        self.published = 0
        self._thread: threading.Thread | None = None
        self._counted_at = float("-inf")

    def wake(self) -> None:
        """Something was committed to the outbox: look now instead of after the idle wait."""
        self._wake.set()

    def relay_once(self) -> int:
        """Publish and mark one batch; the number of rows relayed (0 when the outbox is empty)."""
        with Session(self._engine) as session, session.begin():
            stmt = (
                select(OutboxMessage)
                .where(OutboxMessage.sent_at.is_(None))
                .order_by(OutboxMessage.created_at, OutboxMessage.id)
                .limit(self._batch)
            )
            if session.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            rows = session.scalars(stmt).all()
            if not rows:
                return 0
            futures = [self._producer.send(row.topic, self._envelope(row)) for row in rows]
            for future in futures:
                future.get(timeout=self._timeout_s)  # raises if the broker did not take it: nothing is marked
            if self._fault_pause_s:
                log.warning("published outbox batch, pausing before marking it", extra={"rows": len(rows)})
                self._sleep(self._fault_pause_s)
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_([row.id for row in rows]))
                .values(sent_at=datetime.now(UTC), attempts=OutboxMessage.attempts + 1)
            )
        self.published += len(rows)
        return len(rows)

    def measure_backlog(self) -> tuple[int, float]:
        """Count the unsent rows and the oldest one's age, and publish both as gauges."""
        with Session(self._engine) as session:
            count, oldest = session.execute(
                select(func.count(), func.min(OutboxMessage.created_at)).where(OutboxMessage.sent_at.is_(None))
            ).one()
        age = 0.0
        if oldest is not None:
            # SQLite gives naive timestamps back; the column stores UTC either way.
            since = oldest if oldest.tzinfo is not None else oldest.replace(tzinfo=UTC)
            age = max(0.0, (datetime.now(UTC) - since).total_seconds())
        OUTBOX_BACKLOG.set(count)
        OUTBOX_OLDEST_SECONDS.set(age)
        return int(count), age

    def _measure_now_and_then(self) -> None:
        now = time.monotonic()
        if now - self._counted_at < BACKLOG_EVERY_S:
            return
        self._counted_at = now
        try:
            self.measure_backlog()
        except Exception:
            # The relay's own loop reports a database that is away; a gauge left stale says no more than that.
            log.debug("could not count the outbox backlog", exc_info=True)

    def _envelope(self, row: OutboxMessage) -> Envelope:
        return Envelope(
            type=row.ce_type,
            source=self._source,
            data=row.payload,
            id=str(row.id),
            subject=row.subject,
            time=row.created_at,
            key=row.key,
            traceparent=row.traceparent,
        )

    def run(self) -> None:
        """Relay until stopped; on errors (broker or database away) back off and try again."""
        failures = 0
        while not self.stopping.is_set():
            self._measure_now_and_then()
            try:
                relayed = self.relay_once()
                failures = 0
            except Exception:
                failures += 1
                delay = min(5.0, 0.2 * 2 ** min(failures, 5))
                log.exception("outbox relay failed; retrying", extra={"retry_in_s": delay})
                self.stopping.wait(delay)
                continue
            if relayed == 0:
                self._wake.wait(self._idle_s)
                self._wake.clear()

    def start(self) -> threading.Thread:
        """Run in a daemon thread."""
        self._thread = threading.Thread(target=self.run, name="outbox-relay", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the current batch and stop."""
        self.stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
