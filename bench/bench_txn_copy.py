"""Kafka's own check on the kernel: a transactional copy of 100,000 records across the 3-node cluster while its
brokers are SIGKILLed in turn and started again.

Kafka proves its transactions with `tests/kafkatest/tests/core/transactions_test.py`: 100,000 seed messages copied
by two transactional copiers while the brokers are bounced, then the input and output compared by a
read_committed reader (no duplicates, the same set, per-partition order). Here the copiers are the kernel's
ConsumerRunner in transactional mode (the fault tests' effect worker, one output per input), on the private
3-node cluster behind its proxies (RF 3, min ISR 2) that the `cluster` fixture starts. Each node in turn is
SIGKILLed, kept down a few seconds, started again, and the next kill waits until every replica is back in sync.

Recovery per kill: from the SIGKILL until the committed output rate, as the read_committed reader tailing the output
all along got it, is back to half its rate before the kill (over 5 s against the 10 s before the kill). A
partition's own gaps say little here: a poll of 500 records may all come from one partition's fetched chunk. Usage:
``uv run python bench/bench_txn_copy.py [--quick] [--records N]``; prints a Markdown section. Bounded: the copy
gets at most `--max-s` seconds, after which what is missing counts as lost.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from quartet_contracts.envelope import decode
from quartet_tools.harness.cluster import ClusterServers
from quartet_tools.harness.effects import publish_items
from quartet_tools.harness.processes import Workers
from quartet_tools.harness.records import committed_reader
from quartet_tools.infra import InfraError

HERE = Path(__file__).resolve().parent
FULL_RECORDS = 100_000
QUICK_RECORDS = 5_000
PARTITIONS = 6
KEYS = 60
COPIERS = 2
# Records per transaction: what one poll hands the runner (Kafka's test copies 750 per transaction).
TRANSACTION_RECORDS = 500
DOWN_S = 5.0
# A kill waits until this share of the records is copied, so each strikes a copy under way.
KILL_AFTER = (0.05, 0.3, 0.55)
ISR_TIMEOUT_S = 180.0
# A kill's recovery: until the output rate over RATE_WINDOW_S is back to half the rate over BASELINE_S before it.
RATE_WINDOW_S, BASELINE_S = 5.0, 10.0


def log(message: str) -> None:
    """Progress on stderr, so that stdout stays the Markdown section."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Seen:
    """One committed output as the reader got it: when, where, for which input, and the input's sequence number."""

    at: float
    partition: int
    subject: str
    n: int


@dataclass
class OutputTail:
    """A read_committed reader of every partition of the output topic, in a thread, from the start to `stop`."""

    cluster: ClusterServers
    topic: str
    seen: list[Seen] = field(default_factory=list)
    subjects: set[str] = field(default_factory=set)
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self) -> OutputTail:
        """Read in a thread until `close`."""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def close(self) -> None:
        """Stop once the reader is at the end offsets (at most a minute more)."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join(120)

    def _run(self) -> None:
        try:
            consumer, partitions = committed_reader(self.cluster.settings(), self.topic)
        except BaseException as exc:  # reported in the section
            self.errors.append(exc)
            return
        try:
            deadline = time.monotonic() + 7200
            while time.monotonic() < deadline:
                if self.stop.is_set():
                    end = consumer.end_offsets(partitions)
                    if all(consumer.position(tp) >= end[tp] for tp in partitions):
                        return
                for tp, batch in consumer.poll(timeout_ms=100).items():
                    now = time.monotonic()
                    for record in batch:
                        envelope = decode(record.key, record.value, record.headers)
                        subject = envelope.subject or ""
                        self.seen.append(Seen(now, tp.partition, subject, int(envelope.data["n"])))
                        self.subjects.add(subject)
        except BaseException as exc:  # reported in the section
            self.errors.append(exc)
        finally:
            consumer.close()


@dataclass(frozen=True)
class Kill:
    """One hard kill: which node, when (seconds since the copy started), how long until it was live and in sync."""

    node: int
    at_s: float
    live_after_s: float
    in_sync_after_s: float | None


@dataclass(frozen=True)
class Audit:
    """The input and output compared: lost, duplicated, unexpected, and out of order within a partition."""

    inputs: int
    outputs: int
    lost: int
    duplicated: int
    unexpected: int
    out_of_order: int


def audit(inputs: list[str], seen: list[Seen]) -> Audit:
    """Every input's output once, nothing else, and within each output partition the inputs' order kept.

    An input's sequence number grows with its offset in its partition (one idempotent producer wrote them in
    order) and its output goes to the partition of the same number (same key, same partition count), so in each
    output partition the first output of each input must come in ascending sequence numbers.
    """
    counts = Counter(s.subject for s in seen)
    wanted = set(inputs)
    last: dict[int, int] = {}
    first_seen: set[str] = set()
    out_of_order = 0
    for s in seen:
        if s.subject in first_seen:
            continue
        first_seen.add(s.subject)
        if s.n < last.get(s.partition, -1):
            out_of_order += 1
        last[s.partition] = max(s.n, last.get(s.partition, -1))
    return Audit(
        inputs=len(inputs),
        outputs=len(seen),
        lost=len(wanted - set(counts)),
        duplicated=sum(c - 1 for c in counts.values() if c > 1),
        unexpected=sum(c for s, c in counts.items() if s not in wanted),
        out_of_order=out_of_order,
    )


def recovery_s(seen: list[Seen], kill_at: float) -> float | None:
    """From a kill until the copy's committed output rate over the last RATE_WINDOW_S was back to half its rate
    over the BASELINE_S before the kill (None: never, or no rate before it to come back to)."""
    times = [s.at for s in seen]  # in the order read, so ascending
    baseline = (bisect_left(times, kill_at) - bisect_left(times, kill_at - BASELINE_S)) / BASELINE_S
    if baseline <= 0:
        return None
    start = bisect_left(times, kill_at + RATE_WINDOW_S)
    for i in range(start, len(times)):
        if (i + 1 - bisect_left(times, times[i] - RATE_WINDOW_S)) / RATE_WINDOW_S >= baseline / 2:
            return times[i] - kill_at
    return None


def _wait_copied(tail: OutputTail, count: int, deadline: float) -> bool:
    while time.monotonic() < deadline and not tail.errors:
        if len(tail.subjects) >= count:
            return True
        time.sleep(0.2)
    return False


def _kill_in_turn(
    cluster: ClusterServers, tail: OutputTail, topics: list[str], total: int, t0: float, deadline: float
) -> list[Kill]:
    kills = []
    for node, share in zip(cluster.node_ids(), KILL_AFTER, strict=False):
        if not _wait_copied(tail, int(total * share), deadline) or len(tail.subjects) >= total:
            break
        at = time.monotonic()
        cluster.kill(node)
        log(f"SIGKILLed node {node} at {at - t0:.1f} s ({len(tail.subjects)} copied)")
        time.sleep(DOWN_S)
        cluster.restart(node)
        live = time.monotonic() - at
        try:
            cluster.wait_isr_full(topics, timeout_s=ISR_TIMEOUT_S)
            in_sync: float | None = time.monotonic() - at
        except InfraError:
            in_sync = None
        log(f"node {node} live after {live:.1f} s, in sync after {_s(in_sync)} s")
        kills.append(Kill(node, at - t0, live, in_sync))
    return kills


@dataclass(frozen=True)
class CopyRun:
    """What one run measured."""

    records: int
    publish_s: float
    copy_s: float
    finished: bool
    kills: list[Kill]
    recoveries: list[float | None]
    audit: Audit
    errors: list[str]


def copy_with_kills(records: int, max_s: float, workdir: Path) -> CopyRun:
    """Start the cluster, seed the input, run the copiers while each node is SIGKILLed in turn, and audit."""
    cluster = ClusterServers.start(workdir / "cluster")
    try:
        settings = cluster.settings(topic_partitions=PARTITIONS)
        suffix = uuid.uuid4().hex[:6]
        source, out = (
            cluster.new_topic(f"copy.in.{suffix}", PARTITIONS),
            cluster.new_topic(f"copy.out.{suffix}", PARTITIONS),
        )
        started = time.monotonic()
        inputs = publish_items(settings, source, records, keys=KEYS)
        publish_s = time.monotonic() - started
        log(f"{records} inputs published in {publish_s:.1f} s")
        tail = OutputTail(cluster, out).start()
        workers = Workers(settings, workdir)
        t0 = time.monotonic()
        for copier in range(1, COPIERS + 1):
            workers.start(
                *("--topic", source, "--group", f"copy.{suffix}", "--run", suffix, "--mode", "transactional"),
                *("--out-topic", out, "--max-poll-records", str(TRANSACTION_RECORDS)),
                instance=f"copier-{copier}",
            )
        deadline = t0 + max_s
        try:
            kills = _kill_in_turn(cluster, tail, [source, out], records, t0, deadline)
            finished = _wait_copied(tail, records, deadline)
            copy_s = (max(s.at for s in tail.seen) if tail.seen else time.monotonic()) - t0
        finally:
            # The workers' log tails go to stderr: stdout is the Markdown section.
            with contextlib.redirect_stdout(sys.stderr):
                workers.terminate_all()
        tail.close()
        return CopyRun(
            records=records,
            publish_s=publish_s,
            copy_s=copy_s,
            finished=finished,
            kills=kills,
            recoveries=[recovery_s(tail.seen, t0 + k.at_s) for k in kills],
            audit=audit(inputs, tail.seen),
            errors=[repr(e) for e in tail.errors],
        )
    finally:
        cluster.close()


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def markdown(run: CopyRun, load: tuple[float, float, float]) -> str:
    """The bench section: counts, time, throughput, and each kill's recovery."""
    a = run.audit
    found = [r for r in run.recoveries if r is not None]
    verdict = run.finished and (a.lost, a.duplicated, a.unexpected, a.out_of_order) == (0, 0, 0, 0) and not run.errors
    lines = [
        "## Transactional copy through broker SIGKILLs (Kafka's own check, bench/bench_txn_copy.py)",
        "",
        f"**{'passed' if verdict else 'FAILED'}**. {run.records:,} records, {PARTITIONS} partitions, copied by "
        f"{COPIERS} kernel ConsumerRunners in transactional mode ({TRANSACTION_RECORDS} records per poll) on a private "
        f"3-node cluster (RF 3, min ISR 2, each node behind its Toxiproxy proxy); each node in turn SIGKILLed, down "
        f"{DOWN_S:g} s, started again, the next kill once every replica was back in sync. Load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min) at the start, every process at "
        f"nice {os.nice(0)}.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| inputs / committed outputs read | {a.inputs:,} / {a.outputs:,} |",
        f"| **lost** (input without output) | **{a.lost}** |",
        f"| **duplicated** (outputs beyond the first) | **{a.duplicated}** |",
        f"| **unexpected** (output of no input) | **{a.unexpected}** |",
        f"| **out of order** within a partition | **{a.out_of_order}** |",
        f"| seeding the input (one idempotent producer) | {run.publish_s:.1f} s |",
        f"| copy: first copier start to last output | {run.copy_s:.1f} s"
        + ("" if run.finished else " (**did not finish**: bounded)")
        + " |",
        f"| throughput of the copy, faults included | {a.inputs / run.copy_s if run.copy_s else 0:,.0f} records/s |",
        f"| recovery per kill: median / max | {_s(statistics.median(found) if found else None)} / "
        f"{_s(max(found) if found else None)} s |",
        "",
        "| kill | node | at (s) | live again after (s) | replicas in sync after (s) | recovery (s) |",
        "|---|---|---|---|---|---|",
    ]
    for i, (k, r) in enumerate(zip(run.kills, run.recoveries, strict=True), 1):
        lines.append(f"| {i} | {k.node} | {k.at_s:.1f} | {k.live_after_s:.1f} | {_s(k.in_sync_after_s)} | {_s(r)} |")
    lines += [f"\nReader errors: {'; '.join(run.errors)}" if run.errors else "", ""]
    return "\n".join(lines)


def run(quick: bool, records: int | None = None, max_s: float = 1800.0) -> str:
    """Run the copy on a private cluster and return the Markdown section."""
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    load = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="quartet-bench-txn-copy-"))
    try:
        result = copy_with_kills(records or (QUICK_RECORDS if quick else FULL_RECORDS), max_s, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return markdown(result, load)


def main() -> int:
    """Print the section; exit 1 when the copy lost, doubled, reordered or did not finish."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RECORDS:,} records")
    parser.add_argument("--records", type=int)
    parser.add_argument("--max-s", type=float, default=1800.0, help="the copy's time bound")
    args = parser.parse_args()
    section = run(args.quick, args.records, args.max_s)
    print(section)
    return 0 if "**passed**" in section else 1


if __name__ == "__main__":
    raise SystemExit(main())
