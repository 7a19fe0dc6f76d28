"""The consumer runner: typed handlers, commit after the effect, retries, dead letters, dedup and transactions.

Two modes share one loop:

* ``at_least_once``: handlers make their effect durable themselves (a database transaction that also
  records the message id with :func:`quartet_shared.db.claim_message`); the runner flushes whatever the
  handlers produced and only then commits the batch's offsets.
* ``transactional``: each poll batch is one Kafka transaction holding the handlers' output, the dedup
  changelog records, any dead letters and the consumed offsets (``send_offsets_to_transaction`` with the
  consumer's ``group_metadata()``). A crash anywhere aborts the whole batch, and readers use
  ``read_committed``, so each input yields its output exactly once.

A subscription's ``on_dead_letter`` hook is called for each of its records that is dead-lettered (undecodable, a
schema mismatch, a permanent error, exhausted retries, an output refused by the broker or over the event bound);
what it emits joins the dead letter's transaction or commit. Handlers may defer work to ``ctx.after_commit``, run
only once their record's unit of work is committed: a copy of a result kept outside Kafka must never hold what
the topic does not.

The runner's parts live in :mod:`quartet_shared.runner` (loop, commit protocol, dedup, failures, kafka-python
workarounds); this module is where the rest of the repository imports them from.
"""

from __future__ import annotations

from quartet_contracts.topics import DEDUP_SUFFIX

from quartet_shared.runner.commit import AtLeastOnce, CommitProtocol, Transactional, commit_protocol
from quartet_shared.runner.loop import MAX_POLL_RECORDS, ConsumerRunner
from quartet_shared.runner.model import (
    H_ATTEMPT,
    H_ATTEMPTS,
    H_DLQ_FIRST,
    H_DLQ_LAST,
    H_ERROR_MESSAGE,
    H_ERROR_TYPE,
    H_FIRST_FAILURE,
    H_GROUP,
    H_NOT_BEFORE,
    H_ORIGINAL_OFFSET,
    H_ORIGINAL_PARTITION,
    H_ORIGINAL_TOPIC,
    KERNEL_HEADERS,
    Aborted,
    Context,
    DeadLetter,
    DeadLetterHook,
    Emit,
    Handler,
    Mode,
    PermanentError,
    Subscription,
    backoff_delay,
    original_headers,
)

__all__ = [
    "DEDUP_SUFFIX",
    "H_ATTEMPT",
    "H_ATTEMPTS",
    "H_DLQ_FIRST",
    "H_DLQ_LAST",
    "H_ERROR_MESSAGE",
    "H_ERROR_TYPE",
    "H_FIRST_FAILURE",
    "H_GROUP",
    "H_NOT_BEFORE",
    "H_ORIGINAL_OFFSET",
    "H_ORIGINAL_PARTITION",
    "H_ORIGINAL_TOPIC",
    "KERNEL_HEADERS",
    "MAX_POLL_RECORDS",
    "Aborted",
    "AtLeastOnce",
    "CommitProtocol",
    "ConsumerRunner",
    "Context",
    "DeadLetter",
    "DeadLetterHook",
    "Emit",
    "Handler",
    "Mode",
    "PermanentError",
    "Subscription",
    "Transactional",
    "backoff_delay",
    "commit_protocol",
    "original_headers",
]
