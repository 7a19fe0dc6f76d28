"""The keeper each of `make up`'s native service processes runs under: it starts the process, starts it again
with the same command and environment when it dies (so a worker keeps its instance id, and with it its
transactional id and static group membership), after the shared `RestartPolicy`'s backoff and not past its bound
per minute, and logs each restart into the process's own log.

`python -m quartet_tools.keeper --state FILE -- COMMAND...`: the keeper's pid is the one `make up` records (its
SIGTERM ends the process within the contract's 30 s, then the keeper); FILE (JSON) says the live process's pid,
its starts and whether the keeper gave up, for `make up`'s summary and the simulator's chaos panel.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from quartet_shared.restarts import RestartPolicy, RestartSettings
from quartet_shared.settings import load_settings

# The contract gives a service 30 s to exit on SIGTERM; past it the keeper SIGKILLs it.
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class KeeperState:
    """What a keeper's state file says: the live process (None between two starts), its starts, and whether the
    keeper gave up on it."""

    pid: int | None
    starts: int
    gave_up: bool = False

    @classmethod
    def read(cls, path: Path) -> KeeperState | None:
        """The state in `path`, None when there is none (or it is being replaced)."""
        try:
            data = json.loads(path.read_text())
            return cls(data["pid"], int(data["starts"]), bool(data.get("gave_up", False)))
        except (OSError, ValueError, KeyError):
            return None

    def write(self, path: Path) -> None:
        """Replace `path` at once, so a reader never sees half of it."""
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps({"pid": self.pid, "starts": self.starts, "gave_up": self.gave_up}))
        partial.replace(path)


@dataclass
class Keeper:
    """Runs `command` until told to stop, restarting it by `policy`."""

    command: list[str]
    state: Path
    policy: RestartPolicy
    _stopping: threading.Event = field(default_factory=threading.Event)
    _proc: subprocess.Popen[bytes] | None = None

    def stop(self, *_: object) -> None:
        """End the process (SIGTERM) and then the keeper; safe from a signal handler."""
        self._stopping.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            timer = threading.Timer(STOP_TIMEOUT_S, proc.kill)
            timer.daemon = True
            timer.start()

    def run(self) -> int:
        """Start the process and keep it running; the exit code of its last run once stopped or given up."""
        starts = 0
        while True:
            starts += 1
            started = time.monotonic()
            self._proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL)
            KeeperState(self._proc.pid, starts).write(self.state)
            if self._stopping.is_set():  # a SIGTERM while it was being started
                self.stop()
            # A shell's convention for a death by signal (128 + its number), since an exit code cannot be negative.
            returned = self._proc.wait()
            code = returned if returned >= 0 else 128 - returned
            if self._stopping.is_set():
                KeeperState(None, starts).write(self.state)
                return code
            died = time.monotonic()
            delay = self.policy.next_delay(died)
            if delay is None:
                _log(
                    f"exited with {code} after {died - started:.1f} s; {self.policy.per_window} restarts within "
                    f"{self.policy.window_s:g} s already, not restarted again"
                )
                KeeperState(None, starts, gave_up=True).write(self.state)
                return code or 1
            KeeperState(None, starts).write(self.state)
            _log(f"exited with {code} after {died - started:.1f} s; restart {starts} in {delay:g} s")
            if self._stopping.wait(delay):
                return code
            self.policy.restarted(time.monotonic())


def _log(message: str) -> None:
    """One line in the process's log (the keeper's stdout is that log)."""
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} keeper[{os.getpid()}]: {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m quartet_tools.keeper --state FILE -- COMMAND...`."""
    parser = argparse.ArgumentParser(prog="quartet-keeper", description=__doc__)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to keep")
    keeper = Keeper(command, args.state, RestartPolicy.of(load_settings(RestartSettings)))

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        keeper.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    return keeper.run()


if __name__ == "__main__":
    sys.exit(main())
