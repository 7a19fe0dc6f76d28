"""A worker process for fault tests and benches: `python -m quartet_tools.harness.effect_worker --help`."""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer
from quartet_contracts.envelope import Envelope
from quartet_shared.consumer import ConsumerRunner, Context, Mode, Subscription, Transactional
from quartet_shared.logs import configure_logging
from quartet_shared.runner.model import BatchState
from quartet_shared.settings import KernelSettings

from quartet_tools.harness.effects import Item, record_effect, setup_db


class PausingCommit(Transactional):
    """Sleeps after the transaction's records reach the broker and before it commits: the window to kill in.

    The pause lasts `pause_s`, or ends sooner once the `release` file exists: a test that waits on a condition
    (the zombie's transaction aborted, say) lets the commit go as soon as it holds instead of sleeping out a margin.
    """

    def __init__(
        self, settings: KernelSettings, group: str, *, pause_s: float, marker: Path, release: Path | None = None
    ) -> None:
        super().__init__(settings, group)
        self._pause_s = pause_s
        self._marker = marker
        self._release = release

    def commit(self, consumer: KafkaConsumer, state: BatchState) -> None:
        """Flush, leave the marker, pause, then commit."""
        if state.dedup_records and self._pause_s > 0:
            self.producer.flush()
            self._marker.write_text(f"{os.getpid()} {len(state.dedup_records)}")
            self._pause()
        super().commit(consumer, state)

    def _pause(self) -> None:
        deadline = time.monotonic() + self._pause_s
        while time.monotonic() < deadline:
            if self._release is not None and self._release.exists():
                return
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


def pausing_runner(
    settings: KernelSettings,
    group: str,
    subscriptions: list[Subscription[Any]],
    *,
    pause_s: float,
    marker: Path,
    **options: Any,
) -> ConsumerRunner:
    """A transactional runner whose commits pause as `PausingCommit`'s do (a JobWorker's `runner_class`)."""
    commit = PausingCommit(settings, group, pause_s=pause_s, marker=marker)
    return ConsumerRunner(settings, group, subscriptions, commit=commit, **options)


def main() -> None:
    """Run until SIGTERM (or SIGKILL)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--mode", choices=[m.value for m in Mode], default=Mode.AT_LEAST_ONCE.value)
    parser.add_argument("--out-topic")
    parser.add_argument("--sleep-ms", type=float, default=0.0)
    parser.add_argument("--max-poll-records", type=int, default=100)
    parser.add_argument("--pause-before-commit-s", type=float, default=0.0)
    parser.add_argument("--marker", type=Path, default=Path("/dev/null"))
    parser.add_argument("--release", type=Path, help="a file whose appearance ends the commit's pause early")
    args = parser.parse_args()
    configure_logging("INFO", "effect-worker")
    logging.getLogger("kafka").setLevel(logging.ERROR)
    settings = KernelSettings()
    mode = Mode(args.mode)
    engine = setup_db(settings.database_url or "") if mode is Mode.AT_LEAST_ONCE else None

    def handle(item: Item, ctx: Context) -> None:
        if engine is not None:
            record_effect(engine, args.run, args.group, ctx, item.n)
        if args.out_topic:
            ctx.emit(
                args.out_topic,
                Envelope.of(item, source="/tests/effect-worker", subject=ctx.envelope.id, key=ctx.envelope.key),
            )
        if args.sleep_ms:
            time.sleep(args.sleep_ms / 1000)

    commit = (
        PausingCommit(
            settings, args.group, pause_s=args.pause_before_commit_s, marker=args.marker, release=args.release
        )
        if mode is Mode.TRANSACTIONAL
        else None
    )
    runner = ConsumerRunner(
        settings,
        args.group,
        [Subscription(args.topic, handle, Item)],
        mode=mode,
        max_poll_records=args.max_poll_records,
        session_timeout_ms=6000,
        commit=commit,
    )
    runner.install_signal_handlers()
    runner.run()


if __name__ == "__main__":
    main()
